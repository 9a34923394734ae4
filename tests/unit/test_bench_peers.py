"""The bench peers' pure parts: the JDBC sink's config, the Flink statements, /proc parsing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from cdcsync.pipeline.bench.peer import PeerContext, SourceTopic
from cdcsync.pipeline.bench.peers import flink_calendar as fc
from cdcsync.pipeline.bench.peers.jdbc_sink import sink_config
from cdcsync.pipeline.bench.process_memory import session_pids, session_rss
from cdcsync.pipeline.settings import StackSettings
from cdcsync.sink.calendar_columns import RULE_COLUMNS


def _ctx(tmp_path: Path) -> PeerContext:
    settings = StackSettings.from_env({"CDCSYNC_HOME": str(tmp_path), "CDCSYNC_STACK_PASSWORD": "s3cret-pw"})
    topics = (
        SourceTopic("course", "lectures", "b.public.lectures"),
        SourceTopic("course", "courses", "b.public.courses"),
    )
    return PeerContext(
        stack=settings,
        source_urls={},
        source_databases={},
        topics=topics,
        kafka_bootstrap=settings.kafka_bootstrap,
        connect_url=settings.connect_url,
        target_url="postgresql://u:s3cret-pw@127.0.0.1:1/peer_db",
        target_database="peer_db",
        workdir=tmp_path,
        run_id="r1",
    )


def test_the_jdbc_sink_config_is_the_documented_mirror_and_holds_no_secret(tmp_path: Path) -> None:
    config = sink_config(_ctx(tmp_path))
    assert config["insert.mode"] == "upsert"
    assert config["primary.key.mode"] == "record_key"
    assert config["delete.enabled"] == "true"
    assert config["use.reduction.buffer"] == "true"
    assert config["batch.size"] == config["consumer.override.max.poll.records"]
    assert config["value.converter.schemas.enable"] == "true"
    assert config["topics"] == "b.public.lectures,b.public.courses"
    assert config["connection.url"].endswith("/peer_db")
    assert config["connection.password"] == "${env:CDCSYNC_DEBEZIUM_PASSWORD}"
    assert not [key for key, value in config.items() if "s3cret-pw" in value]


def test_flink_source_ddl_reads_in_upsert_mode_with_its_own_slot_and_quotes_values() -> None:
    db = fc.Database("127.0.0.1", 5432, "admin", "it's", "course_db")
    ddl = fc.source_ddl("course", "lectures", db, "bflink_r1_lectures", "bflink_r1")
    assert "'changelog-mode' = 'upsert'" in ddl
    assert "'slot.name' = 'bflink_r1_lectures'" in ddl
    assert "'decoding.plugin.name' = 'pgoutput'" in ddl
    assert "'password' = 'it''s'" in ddl
    assert "PRIMARY KEY (`id`) NOT ENFORCED" in ddl


def test_every_calendar_column_has_a_flink_type_and_the_sink_is_keyed_on_the_calendar_key() -> None:
    ddl = fc.sink_ddl(fc.Database("h", 1, "u", "p", "d"))
    for column in RULE_COLUMNS:
        assert f"`{column.name}` {fc.FLINK_TYPES[column.sql_type]}" in ddl
    assert "PRIMARY KEY (`user_id`, `entry_key`) NOT ENFORCED" in ddl
    assert f"'table-name' = '{fc.TARGET_TABLE}'" in ddl


def test_a_session_is_its_live_processes_and_their_memory() -> None:
    leader = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        assert session_pids(leader.pid) == [leader.pid]
        assert session_rss(leader.pid) > 0
        assert session_rss(leader.pid, "sleep") == session_rss(leader.pid)
        assert session_rss(leader.pid, "java") == 0
    finally:
        leader.kill()
        leader.wait()
    assert session_pids(leader.pid) == []
