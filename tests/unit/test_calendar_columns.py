"""The calendar row's columns are declared once (``sink.calendar_columns``); everything else follows it."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from cdcsync.pipeline.verification.expected_calendar import CalendarRow
from cdcsync.sink.calendar_columns import CALENDAR_COLUMNS, RULE_COLUMN_NAMES, create_table_statement

CONTRACT = Path(__file__).resolve().parents[2] / "docs" / "calendar-domain.md"


def _contract_columns() -> list[tuple[str, str, bool]]:
    """(name, type, nullable) of the read model, as the domain contract writes its CREATE TABLE."""
    ddl = CONTRACT.read_text(encoding="utf-8").split("CREATE TABLE calendar.calendar_entries (", 1)[1]
    columns = []
    for line in ddl.split(");", 1)[0].splitlines():
        match = re.match(r"\s*([a-z_]+)\s+([a-z]+(?:\(\d+,\d+\))?)\s*(NOT NULL)?\s*,?\s*(--.*)?$", line)
        if match and match.group(1) != "PRIMARY":
            columns.append((match.group(1), match.group(2), match.group(3) is None))
    return columns


def test_the_declaration_is_the_contracts_read_model() -> None:
    declared = [(c.name, c.sql_type, c.nullable) for c in CALENDAR_COLUMNS]
    assert declared == _contract_columns()


def test_the_verified_row_has_the_rule_columns_in_order() -> None:
    assert tuple(field.name for field in dataclasses.fields(CalendarRow)) == RULE_COLUMN_NAMES


def test_the_table_is_created_from_the_declaration() -> None:
    statement = create_table_statement().as_string(None)
    assert statement.endswith('PRIMARY KEY ("user_id", "entry_key"))')
    assert all(f'"{column.name}" {column.sql_type}' in statement for column in CALENDAR_COLUMNS)
