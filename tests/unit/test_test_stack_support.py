"""The test suite's own support: the guard's verdict on the shipped connectors, and the reset of the test home."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cdcsync.debezium.connector_state import ConnectorState, TaskState
from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.processes import wait_until
from tests.support.pipeline_guard import shipped_connector_problems
from tests.support.stack_reset import stop_leftovers, wipe_home

Listener = Callable[[str], "subprocess.Popen[bytes]"]
TRACE = (
    "org.apache.kafka.connect.errors.ConnectException: An exception occurred in the change event producer.\n"
    "\tat io.debezium.pipeline.ErrorHandler.setProducerThrowable(ErrorHandler.java:67)\n"
    'Caused by: org.postgresql.util.PSQLException: ERROR: publication "cdcsync_attendance" does not exist\n'
)


def _state(name: str, state: str, *tasks: TaskState, trace: str | None = None) -> ConnectorState:
    return ConnectorState(name=name, state=state, worker_id="w", tasks=tasks, trace=trace)


def test_the_guard_names_a_missing_connector_and_a_failed_task_with_its_cause() -> None:
    states = {
        "cdcsync-course": _state("cdcsync-course", "RUNNING", TaskState(0, "RUNNING", "w")),
        "cdcsync-attendance": _state("cdcsync-attendance", "RUNNING", TaskState(0, "FAILED", "w", TRACE)),
        "cdcsync-assignment": None,
    }
    assert shipped_connector_problems(states) == [
        "cdcsync-assignment: not registered in Kafka Connect",
        "cdcsync-attendance task 0 FAILED: org.apache.kafka.connect.errors.ConnectException: An exception occurred"
        " in the change event producer. (Caused by: org.postgresql.util.PSQLException: ERROR: publication"
        ' "cdcsync_attendance" does not exist)',
    ]


def test_the_guard_passes_running_and_paused_connectors() -> None:
    states = {
        "a": _state("a", "RUNNING", TaskState(0, "RUNNING", "w")),
        "b": _state("b", "PAUSED", TaskState(0, "PAUSED", "w")),
    }
    assert shipped_connector_problems(states) == []


def test_wipe_keeps_only_the_resolved_jars(tmp_path: Path) -> None:
    for path in ("jvm/stamp", "postgres/data/PG_VERSION", "run/kafka.pid", "logs/connect.log"):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    wipe_home(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["jvm"]
    assert (tmp_path / "jvm" / "stamp").exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def settings(tmp_path: Path) -> StackSettings:
    return StackSettings(
        home=tmp_path / "home",
        postgres_port=_free_port(),
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        connect_port=_free_port(),
        password="unused",
        postgres_binaries="auto",
    )


@pytest.fixture
def listener(settings: StackSettings) -> Iterator[Listener]:
    """Starts a process listening on the test stack's Kafka port; the test says what its command line names."""
    started: list[subprocess.Popen[bytes]] = []

    def start(marker: str) -> subprocess.Popen[bytes]:
        code = (
            "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen();"
            " time.sleep(120)"
        )
        process = subprocess.Popen([sys.executable, "-c", code, str(settings.kafka_port), marker])
        started.append(process)
        wait_until(lambda: bool(_listening(process.pid)), 10, "the listener")
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def _listening(pid: int) -> list[object]:
    return [c for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]


def test_a_leftover_of_the_test_home_on_a_test_port_is_stopped(settings: StackSettings, listener: Listener) -> None:
    process = listener(f"--home={settings.home}")
    assert stop_leftovers(settings) == [f"pid {process.pid} without a pid file"]
    assert process.wait(timeout=10) is not None


def test_a_stranger_on_a_test_port_is_named_and_left_alone(settings: StackSettings, listener: Listener) -> None:
    process = listener("someone-elses")
    with pytest.raises(StackError, match=f"pid {process.pid} .* listens on a test port but is not the test stack's"):
        stop_leftovers(settings)
    assert process.poll() is None
