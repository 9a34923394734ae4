"""Pid files, the cmdline check that keeps `stack down` from signalling strangers, ports and polling."""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.stack.processes import (
    ManagedProcess,
    PidRecord,
    cmdline_matches,
    port_in_use,
    wait_until,
)

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)", "cdcsync-test-sleeper"]


def test_cmdline_matches_exact_argv() -> None:
    assert cmdline_matches(["java", "-cp", "a/*", "kafka.Kafka"], b"java\0-cp\0a/*\0kafka.Kafka\0")


@pytest.mark.parametrize(
    "raw",
    [
        b"",  # a zombie, or a pid that no longer exists
        b"java\0-cp\0a/*\0kafka.Kafka\0extra\0",
        b"java\0-cp\0a/*\0",
        b"/usr/bin/java\0-cp\0a/*\0kafka.Kafka\0",
        b"java -cp a/* kafka.Kafka\0",  # a rewritten title is not our argv
    ],
)
def test_cmdline_mismatch(raw: bytes) -> None:
    assert not cmdline_matches(["java", "-cp", "a/*", "kafka.Kafka"], raw)


def test_pid_record_round_trip() -> None:
    record = PidRecord(pid=4242, argv=("java", "-Xmx512m", "kafka.Kafka"))
    assert PidRecord.loads(record.dumps()) == record


@pytest.mark.parametrize(
    "text",
    ["", "1234", "not json", "[1, 2]", '{"pid": 1, "argv": ["x"]}', '{"pid": 12, "argv": []}', '{"pid": "12"}'],
)
def test_pid_record_rejects_what_is_not_ours(text: str) -> None:
    assert PidRecord.loads(text) is None


def test_start_and_stop_a_process(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", tmp_path)
    pid = process.start(SLEEPER)
    try:
        assert process.running_pid() == pid
        assert process.pid_file.is_file()
        assert process.log_file.is_file()
        assert os.getpgid(pid) == pid  # its own session and group
    finally:
        assert process.stop(timeout=10)
    assert process.running_pid() is None
    assert not process.pid_file.exists()
    assert not process.stop()


def test_stop_leaves_a_pid_that_runs_something_else_alone(tmp_path: Path) -> None:
    process = ManagedProcess("stale", tmp_path)
    process.pid_file.parent.mkdir(parents=True)
    # Our own pid, recorded with an argv it does not run: a recycled pid.
    process.pid_file.write_text(PidRecord(pid=os.getpid(), argv=("java", "kafka.Kafka")).dumps())
    assert process.running_pid() is None
    assert not process.stop()
    assert not process.pid_file.exists()


def test_port_in_use_sees_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
    assert not port_in_use("127.0.0.1", port)


def test_wait_until_returns_once_true() -> None:
    calls = iter([False, False, True])
    assert wait_until(lambda: next(calls), timeout=5, what="the third call", interval=0.001) >= 0


def test_wait_until_names_what_timed_out() -> None:
    with pytest.raises(TimeoutError, match="waiting for the moon"):
        wait_until(lambda: False, timeout=0.05, what="the moon", interval=0.01)


def test_wait_until_lets_a_predicate_fail_fast() -> None:
    def exited() -> bool:
        raise StackError("kafka", "exited while starting")

    with pytest.raises(StackError, match="exited while starting"):
        wait_until(exited, timeout=5, what="kafka")
