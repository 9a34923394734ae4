"""No secret ever appears: commands against the test stack and a sink of their own run as real processes,
with both log formats and DEBUG logging, and every output and log file they produced (stdout, stderr, the
stack's logs directory, the sinks' logs) is searched for the stack's password.

The test stack's password is a value no other text holds (``TEST_STACK_PASSWORD`` in tests/conftest.py).
``cdcsync stack env`` is the one command whose output holds it by design (its lines are for eval): it is
the control that shows the search would find the password where it is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from cdcsync.pipeline.targets import PLACEHOLDER_VARIABLES, Targets
from tests.conftest import TEST_STACK_PASSWORD, _TestStack
from tests.integration.conftest import SinkProcess, until

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cdcsync(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cdcsync", *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _explicit_env(targets: Targets) -> dict[str, str]:
    """What ``eval "$(cdcsync stack env)"`` plus the sink's and the worker's variables give a shell: no profile."""
    env = {k: v for k, v in os.environ.items() if k != "CDCSYNC_PROFILE"}
    keys = ("COURSE_DB_URL", "ATTENDANCE_DB_URL", "ASSIGNMENT_DB_URL", "CALENDAR_DB_URL", "CDCSYNC_SINK_DB_URL")
    env.update({key: targets.get(key) for key in (*keys, "KAFKA_BOOTSTRAP_SERVERS", "CONNECT_URL")})
    env.update({k: v for k, v in targets.placeholder_env().items() if k in PLACEHOLDER_VARIABLES})
    env.update({f"CDCSYNC_{s.upper()}_SIGNAL_DB_URL": targets.signal_url(s) for s in targets.source_urls})
    return env


def test_no_output_or_log_holds_the_password(sink: SinkProcess, test_stack: _TestStack, tmp_path: Path) -> None:
    assert os.environ["CDCSYNC_STACK_PASSWORD"] == TEST_STACK_PASSWORD, "the test stack must run with the test password"
    local = {**os.environ, "CDCSYNC_PROFILE": "local"}
    explicit = _explicit_env(sink.targets)
    outputs: dict[str, str] = {}

    control = _cdcsync(local, "stack", "env")
    assert control.returncode == 0, control.stderr
    assert TEST_STACK_PASSWORD in control.stdout  # the search below would find it

    runs = [
        ("local status", local, ["status"]),
        ("local verify", local, ["verify"]),
        ("local sources check", local, ["sources", "check"]),
        ("local connectors get json", local, ["connectors", "get", "-o", "json"]),
        ("local connectors describe", local, ["connectors", "describe", "cdcsync-course", "-o", "yaml"]),
        ("local dlq list", local, ["dlq", "list"]),
        ("env verify json debug", explicit, ["--log-format", "json", "-v", "verify", "--json", "--wait", "60"]),
        ("env status", explicit, ["status"]),
        ("env sources check json", explicit, ["sources", "check", "--json"]),
        ("env connectors status", explicit, ["-v", "connectors", "status"]),
        # Failures print their error line: a refused login and an unreachable server.
        ("wrong password", {**explicit, "CALENDAR_DB_URL": _with_password(explicit, "not-it")}, ["verify"]),
        ("no server", {**explicit, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"}, ["dlq", "list"]),
    ]
    for name, env, args in runs:
        result = _cdcsync(env, *args)
        assert "target: " in result.stderr, (name, result.stderr)
        outputs[f"{name}: stdout"] = result.stdout
        outputs[f"{name}: stderr"] = result.stderr
    assert json.loads(outputs["env verify json debug: stdout"].strip().splitlines()[-1])["clean"] is True

    own_log = tmp_path / "own-sink.log"
    suffix = uuid.uuid4().hex[:10]
    own_env = {
        **sink.targets.sink_process_env(),
        "CDCSYNC_SINK_GROUP": f"test-secrets-{suffix}",
        "CDCSYNC_DLQ_TOPIC": f"test-secrets-dlq-{suffix}",
        "CDCSYNC_LOG_FORMAT": "json",
        "CDCSYNC_VERBOSE": "1",
    }
    with own_log.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cdcsync", "sink", "run"], env=own_env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        until("the sink's partitions", lambda: "assigned" in own_log.read_text() or None, timeout=120)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0
    lines = own_log.read_text().splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)  # stderr is JSON lines, the target line too

    files = [own_log, sink.log_file, *sorted((test_stack.settings.home / "logs").glob("*"))]
    outputs.update({str(path): path.read_text(errors="replace") for path in files if path.is_file()})
    leaks = [where for where, text in outputs.items() if TEST_STACK_PASSWORD in text]
    assert leaks == [], f"the password appears in: {', '.join(leaks)}"


def _with_password(env: dict[str, str], password: str) -> str:
    return env["CALENDAR_DB_URL"].replace(TEST_STACK_PASSWORD, password)
