"""Explicit configuration: nothing falls back to the local stack outside the local profile; every command
says its target; --help shows every option's variable; --version; logs as text or JSON, never a secret."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest

from cdcsync import __version__
from cdcsync.pipeline.cli import cli
from cdcsync.pipeline.logs import JsonFormatter, Redactor, TextFormatter, configure_logging, secrets_in
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import TARGET_VARIABLES, Profile, Targets
from tests.support.cli_runs import run_cdcsync

# Each command with the variables a missing environment must name (the first few).
COMMANDS = [
    (["verify"], "COURSE_DB_URL"),
    (["verify", "--repair"], "KAFKA_BOOTSTRAP_SERVERS"),
    (["status"], "CONNECT_URL"),
    (["resync", "--table", "course.lectures"], "CDCSYNC_SINK_DB_URL"),
    (["snapshot", "--table", "course.lectures"], "CDCSYNC_COURSE_SIGNAL_DB_URL"),
    (["snapshot", "--table", "course.lectures", "--wait"], "KAFKA_BOOTSTRAP_SERVERS"),
    (["snapshot", "--incomplete"], "CONNECT_URL"),
    (["sources", "check"], "CDCSYNC_DEBEZIUM_PASSWORD"),
    (["connectors", "apply"], "CONNECT_URL"),
    (["connectors", "apply", "--connect-url", "http://127.0.0.1:1"], "CDCSYNC_PG_HOST"),
    (["connectors", "get"], "CONNECT_URL"),
    (["connectors", "status"], "CONNECT_URL"),
    (["connectors", "describe", "x"], "CONNECT_URL"),
    (["connectors", "pause", "x"], "CONNECT_URL"),
    (["connectors", "offsets", "get", "x"], "CONNECT_URL"),
    (["dlq", "list"], "KAFKA_BOOTSTRAP_SERVERS"),
    (["dlq", "replay", "--all"], "KAFKA_BOOTSTRAP_SERVERS"),
    (["sink", "run"], "CDCSYNC_SINK_DB_URL"),
]


@pytest.fixture
def empty_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No target variable, no profile, no contexts file, and the working directory elsewhere."""
    for key in [*TARGET_VARIABLES, "CDCSYNC_PROFILE", "CDCSYNC_CONTEXT", "CDCSYNC_PG_HOST", "CDCSYNC_DEBEZIUM_USER"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.delenv("CDCSYNC_DEBEZIUM_PASSWORD", raising=False)
    monkeypatch.delenv("CDCSYNC_PG_PORT", raising=False)
    monkeypatch.setenv("CDCSYNC_CONFIG", str(tmp_path / "contexts.toml"))
    monkeypatch.chdir(tmp_path)


@pytest.mark.parametrize(("args", "variable"), COMMANDS, ids=[" ".join(a) for a, _ in COMMANDS])
@pytest.mark.usefixtures("empty_env")
def test_a_missing_variable_exits_2_naming_it_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], variable: str
) -> None:
    run = run_cdcsync(monkeypatch, capsys, *args)
    assert run.code == 2, run.stderr
    target, error = run.stderr.splitlines()[-2:]
    assert target.startswith("target: ")
    assert "local stack" not in target
    assert variable in error
    assert "--local" in error  # the fix names both ways: set the variable, or point at the local stack
    assert run.stdout == ""


def test_the_local_profile_uses_the_local_stack_and_says_what_it_ignores(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "prod-kafka:9092")
    settings = StackSettings.from_env({"CDCSYNC_HOME": str(tmp_path), "CDCSYNC_KAFKA_PORT": "25092"})
    local = Targets.local_stack(settings)
    assert local.kafka_bootstrap_servers == "127.0.0.1:25092"
    assert local.describe(["KAFKA_BOOTSTRAP_SERVERS"]) == (
        f"local stack ({tmp_path}); ignoring KAFKA_BOOTSTRAP_SERVERS from the environment"
    )
    given = local.with_options({"KAFKA_BOOTSTRAP_SERVERS": ("--bootstrap-servers", "k:1")})
    assert given.kafka_bootstrap_servers == "k:1"
    assert given.describe(["KAFKA_BOOTSTRAP_SERVERS"]).startswith(
        f"local stack ({tmp_path}) with --bootstrap-servers=k:1"
    )


def test_the_target_line_names_the_variables_never_a_password() -> None:
    env = {
        "CALENDAR_DB_URL": "postgresql://reader:pa55word-x@db.internal:5432/calendar",
        "COURSE_DB_URL": "host=course.internal user=svc password=pa55word-y dbname=course",
        "CONNECT_URL": "https://ops:pa55word-z@connect.internal:8083",
        "KAFKA_BOOTSTRAP_SERVERS": "k1:9092,k2:9092",
    }
    line = Targets.environment(env).describe(env)
    assert "pa55word" not in line
    assert line == (
        "environment (CALENDAR_DB_URL=reader@db.internal:5432/calendar, COURSE_DB_URL=svc@course.internal/course, "
        "CONNECT_URL=https://connect.internal:8083, KAFKA_BOOTSTRAP_SERVERS=k1:9092,k2:9092)"
    )


def test_the_profile_is_chosen_by_flag_option_or_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CDCSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("CDCSYNC_CONFIG", str(tmp_path / "contexts.toml"))
    monkeypatch.delenv("CONNECT_URL", raising=False)
    monkeypatch.delenv("CDCSYNC_CONTEXT", raising=False)
    for setting, args in (
        ({"CDCSYNC_PROFILE": "local"}, []),
        ({"CDCSYNC_PROFILE": "env"}, ["--local"]),
        ({"CDCSYNC_PROFILE": "env"}, ["--profile", "local"]),
    ):
        for key, value in setting.items():
            monkeypatch.setenv(key, value)
        # Port 1 of the local stack's host: refused at once, after the target line.
        monkeypatch.setenv("CDCSYNC_CONNECT_PORT", "1024")
        run = run_cdcsync(monkeypatch, capsys, *args, "connectors", "get", "--request-timeout", "2")
        assert run.stderr.splitlines()[0] == f"target: local stack ({tmp_path})", (setting, args, run.stderr)
    monkeypatch.setenv("CDCSYNC_PROFILE", "staging")
    run = run_cdcsync(monkeypatch, capsys, "verify")
    assert run.code == 2
    assert "CDCSYNC_PROFILE" in run.stderr


def test_version(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    run = run_cdcsync(monkeypatch, capsys, "--version")
    assert (run.code, run.stdout) == (0, f"cdcsync {__version__}\n")
    assert __version__ != "0+unknown"  # the installed distribution's


def _options(command: click.Command, path: str) -> list[tuple[str, click.Option]]:
    found = [(f"{path} {p.opts[-1]}", p) for p in command.params if isinstance(p, click.Option)]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            found += _options(sub, f"{path} {name}")
    return found


def test_help_shows_every_options_environment_variable() -> None:
    options = _options(cli, "cdcsync")
    with_variable = [(where, o) for where, o in options if o.envvar]
    assert len(with_variable) > 30
    assert [where for where, o in with_variable if not o.show_envvar] == []
    context = click.Context(cli, info_name="cdcsync")
    assert "env var: CDCSYNC_PROFILE" in " ".join(cli.get_help(context).split())


def test_sink_run_with_an_empty_environment_exits_at_once_naming_the_variable(tmp_path: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cdcsync", "sink", "run"],
        env={"PATH": os.environ["PATH"]},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert time.monotonic() - started < 15
    assert result.returncode == 2
    assert "KAFKA_BOOTSTRAP_SERVERS" in result.stderr
    assert "CDCSYNC_SINK_DB_URL" in result.stderr


# --- logs ------------------------------------------------------------------


def _record(message: str, *args: object, exc: BaseException | None = None) -> logging.LogRecord:
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord("cdcsync.sink", logging.WARNING, __file__, 1, message, args, exc_info)


def test_secrets_are_found_in_the_environment() -> None:
    env = {
        "CDCSYNC_STACK_PASSWORD": "stack-secret",
        "CONNECT_PASSWORD": "connect-secret",
        "CDCSYNC_SINK_DB_URL": "postgresql://sink:url-secret@db/calendar",
        "COURSE_DB_URL": "host=db password=dsn-secret",
        "KAFKA_BOOTSTRAP_SERVERS": "k:9092",
        "EMPTY_PASSWORD": "",
    }
    assert secrets_in(env) == {"stack-secret", "connect-secret", "url-secret", "dsn-secret"}


def test_json_lines_carry_time_level_logger_message_and_mask_secrets() -> None:
    redact = Redactor(frozenset({"hunter2-x"}))
    try:
        raise RuntimeError("login as postgresql://sink:other-pass@db/calendar failed")
    except RuntimeError as caught:
        error = caught
    line = JsonFormatter(redact).format(_record("password %s refused", "hunter2-x", exc=error))
    document = json.loads(line)
    assert set(document) == {"time", "level", "logger", "message", "exception"}
    assert (document["level"], document["logger"], document["message"]) == (
        "WARNING",
        "cdcsync.sink",
        "password *** refused",
    )
    assert "other-pass" not in document["exception"]
    assert "postgresql://sink:***@db/calendar" in document["exception"]
    assert "\n" not in line


def test_text_lines_mask_secrets_too() -> None:
    line = TextFormatter(Redactor(frozenset({"hunter2-x"})))
    text = line.format(_record("connect to %s with %s", "https://u:p4ss@h", "hunter2-x"))
    assert text.endswith("WARNING cdcsync.sink connect to https://u:***@h with ***")


def test_log_format_json_is_a_global_option_and_stderr_stays_json_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    monkeypatch.setenv("CDCSYNC_HOME", str(tmp_path))
    monkeypatch.setenv("CDCSYNC_STACK_PASSWORD", "pw-for-the-log-test")
    try:
        run = run_cdcsync(monkeypatch, capsys, "--log-format", "json", "stack", "status")
        logging.getLogger("cdcsync.test").warning("the password is pw-for-the-log-test")
        records = [json.loads(line) for line in run.stderr.splitlines() + capsys.readouterr().err.splitlines()]
    finally:
        configure_logging("text", verbose=False, env={})  # back to text for the other tests
    assert run.code == 3  # nothing runs under the empty home
    assert records[0]["message"] == f"target: local stack ({tmp_path})"
    assert records[-2]["level"] == "ERROR"
    assert records[-2]["message"].startswith("error: stack: not running")
    assert records[-1]["message"] == "the password is ***"
    assert Profile.LOCAL.value == "local"
