"""The demo data set is deterministic and covers the cases the calendar rules distinguish."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from cdcsync.pipeline.sources.demo_data import (
    COURSE_COUNT,
    DEFAULT_SEED,
    LARGE_DESCRIPTION_BYTES,
    USER_COUNT,
    DemoData,
    generate_demo_data,
)
from cdcsync.pipeline.sources.setup import SERVICE_TABLES, schema_ddl


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo_data()


def test_same_seed_gives_the_same_rows(demo: DemoData) -> None:
    assert generate_demo_data(DEFAULT_SEED) == demo


def test_another_seed_gives_other_rows(demo: DemoData) -> None:
    other = generate_demo_data(DEFAULT_SEED + 1)
    assert other.lectures != demo.lectures
    assert other.enrollments != demo.enrollments


@pytest.mark.parametrize("seed", [DEFAULT_SEED, 1, 2, 3])
def test_covers_every_case_of_the_rules(seed: int) -> None:
    data = generate_demo_data(seed)
    assert len(data.courses) == COURSE_COUNT
    assert 8 * COURSE_COUNT <= len(data.lectures) <= 12 * COURSE_COUNT
    assert any(lecture.cancelled for lecture in data.lectures)
    assert not all(lecture.cancelled for lecture in data.lectures)
    assert any(not a.published for a in data.assignments)
    assert any(e.status == "dropped" for e in data.enrollments)
    assert {e.user_id for e in data.enrollments} == set(range(1001, 1001 + USER_COUNT))
    large = [a for a in data.assignments if a.description and len(a.description.encode()) > LARGE_DESCRIPTION_BYTES]
    assert large
    assert any(lecture.room is None for lecture in data.lectures)
    assert any(a.max_score is None for a in data.assignments)
    assert any(not lecture.room.isascii() for lecture in data.lectures if lecture.room)


def test_course_database_rows_satisfy_its_foreign_and_primary_keys(demo: DemoData) -> None:
    course_ids = {c.id for c in demo.courses}
    assert len(course_ids) == len(demo.courses)
    assert {lecture.course_id for lecture in demo.lectures} <= course_ids
    assert {e.course_id for e in demo.enrollments} <= course_ids
    keys = [(e.course_id, e.user_id) for e in demo.enrollments]
    assert len(set(keys)) == len(keys)
    assert len({lecture.id for lecture in demo.lectures}) == len(demo.lectures)
    assert len({w.id for w in demo.windows}) == len(demo.windows)
    assert len({a.id for a in demo.assignments}) == len(demo.assignments)


def test_cross_service_ids_include_a_dangling_one_each(demo: DemoData) -> None:
    lecture_ids = {lecture.id for lecture in demo.lectures}
    course_ids = {c.id for c in demo.courses}
    assert sum(w.lecture_id not in lecture_ids for w in demo.windows) == 1
    assert sum(a.course_id not in course_ids for a in demo.assignments) == 1


def test_values_fit_the_schema_and_carry_microseconds(demo: DemoData) -> None:
    for a in demo.assignments:
        if a.max_score is not None:
            assert a.max_score == a.max_score.quantize(Decimal("0.01"))
            assert abs(a.max_score) < Decimal("10000")
            assert a.max_score.as_tuple().exponent == -2
        assert a.due_at > a.opens_at
    for lecture in demo.lectures:
        assert lecture.ends_at - lecture.starts_at >= timedelta(minutes=90)
        assert lecture.starts_at.tzinfo is not None
    for w in demo.windows:
        assert w.closes_at > w.opens_at
    assert sum(lecture.starts_at.microsecond != 0 for lecture in demo.lectures) > len(demo.lectures) // 2


def _ddl_of(table: str) -> str:
    service = next(s for s, tables in SERVICE_TABLES.items() if table in tables)
    return schema_ddl(service)


def test_tables_by_service_lists_every_source_table_parents_first(demo: DemoData) -> None:
    tables = demo.tables_by_service()
    assert {service: tuple(t.table for t in entries) for service, entries in tables.items()} == dict(SERVICE_TABLES)
    for entries in tables.values():
        for entry in entries:
            assert all(len(row) == len(entry.columns) for row in entry.rows)
            # every column loaded is a column of the spec's DDL
            assert all(column in _ddl_of(entry.table) for column in entry.columns)


def test_schema_ddl_rejects_unknown_services() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        schema_ddl("billing")
