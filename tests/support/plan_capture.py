"""Plans of the statements a connection runs, as PostgreSQL chose them at that instant.

``capture_plans(conn)`` makes the connection's cursors EXPLAIN every data statement
with its own parameters, in its own transaction (so the batch's temp tables are as
the statement sees them), just before running it. ``full_scans`` names the plan nodes
that read a whole table of interest: a sequential scan, or an index scan with no
index condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.abc import Params, Query

_EXPLAINED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")
_INDEX_SCANS = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


@dataclass
class CapturedPlans:
    plans: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (statement, plan root)

    def full_scans(self, tables: set[tuple[str, str]]) -> list[str]:
        """'<node> on schema.table in: <statement>' for every whole-table read of ``tables``."""
        found: list[str] = []
        for statement, plan in self.plans:
            for node in _nodes(plan):
                relation = (node.get("Schema", ""), node.get("Relation Name", ""))
                if relation not in tables:
                    continue
                kind = node["Node Type"]
                if kind == "Seq Scan" or (kind in _INDEX_SCANS and "Index Cond" not in node):
                    found.append(f"{kind} on {'.'.join(relation)} in: {' '.join(statement.split())[:300]}")
        return found


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


@contextmanager
def capture_plans(conn: psycopg.Connection[tuple[object, ...]]) -> Iterator[CapturedPlans]:
    captured = CapturedPlans()

    class ExplainingCursor(psycopg.Cursor[tuple[object, ...]]):
        def execute(self, query: Query, params: Params | None = None, **kwargs: Any) -> ExplainingCursor:
            if isinstance(query, str | sql.Composable):
                statement = sql.SQL(query) if isinstance(query, str) else query
                text = statement.as_string(self)
                if text.lstrip().upper().startswith(_EXPLAINED):
                    super().execute(sql.SQL("EXPLAIN (FORMAT JSON, VERBOSE) ") + statement, params)
                    row = self.fetchone()
                    assert row is not None
                    document: Any = row[0]
                    captured.plans.append((text, document[0]["Plan"]))
            super().execute(query, params, **kwargs)  # type: ignore[arg-type]
            return self

    previous = conn.cursor_factory
    conn.cursor_factory = ExplainingCursor
    try:
        yield captured
    finally:
        conn.cursor_factory = previous
