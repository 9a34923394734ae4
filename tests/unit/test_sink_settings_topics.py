"""CDCSYNC_TOPIC_PREFIXES: which change topics the sink consumes."""

from __future__ import annotations

import pytest

from cdcsync.errors import ConfigError
from cdcsync.sink.settings import SinkSettings

BASE = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092", "CDCSYNC_SINK_DB_URL": "postgresql://sink@db/calendar"}


def test_unset_the_shipped_topics() -> None:
    topics = set(SinkSettings.from_env(BASE).routing())
    assert "course.public.courses" in topics and "assignment.public.assignments" in topics
    assert len(topics) == 5


def test_prefixes_rename_each_service_topics() -> None:
    settings = SinkSettings.from_env({**BASE, "CDCSYNC_TOPIC_PREFIXES": " course=p1 , assignment=p3"})
    routing = settings.routing()
    assert {topic: table.qualified_name for topic, table in routing.items()} == {
        "p1.public.courses": "course.courses",
        "p1.public.lectures": "course.lectures",
        "p1.public.enrollments": "course.enrollments",
        "attendance.public.attendance_windows": "attendance.attendance_windows",
        "p3.public.assignments": "assignment.assignments",
    }


@pytest.mark.parametrize(
    "raw, problem",
    [
        ("grades=p1", "'grades' is not a service"),
        ("course=", "'' is not a topic prefix for course"),
        ("course=a b", "'a b' is not a topic prefix for course"),
        ("course=p1,course=p2", "course is named twice"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_fix(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SinkSettings.from_env({**BASE, "CDCSYNC_TOPIC_PREFIXES": raw})
    message = str(raised.value)
    assert "CDCSYNC_TOPIC_PREFIXES" in message and problem in message and "service=prefix" in message
