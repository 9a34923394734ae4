"""`cdcsync connectors`: masking, output, context resolution, waiting, and the CLI's options and exit codes."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner

from cdcsync.debezium.apply import load_specs
from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import ConnectorFailed, ConnectTimeout
from cdcsync.debezium.connector_state import ConnectorInfo, ConnectorState
from cdcsync.debezium.contexts import (
    ConnectContext,
    ConnectOverrides,
    ContextsFile,
    contexts_path,
    resolve_target,
)
from cdcsync.debezium.output import (
    MASK,
    connector_document,
    describe_lines,
    get_rows,
    mask_config,
    mask_value,
    render,
    tasks_summary,
)
from cdcsync.debezium.waiting import wait_for_state
from cdcsync.pipeline.connectors_commands import connectors
from cdcsync.pipeline.connectors_lifecycle_commands import after_reset
from cdcsync.pipeline.errors import ConfigError
from tests.support.cli_runs import run_cdcsync

CONNECTORS_DIR = Path(__file__).resolve().parents[2] / "debezium" / "connectors"

# --- masking ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("database.password", "${env:CDCSYNC_DEBEZIUM_PASSWORD}", "${env:CDCSYNC_DEBEZIUM_PASSWORD}"),
        ("database.password", "hunter2", MASK),
        ("database.password", "${env:X} trailing", MASK),
        ("database.sslpassword", "${file:/etc/secrets.properties:pw}", "${file:/etc/secrets.properties:pw}"),
        ("sasl.jaas.config", 'org.x.PlainLoginModule required username="u" password="p";', MASK),
        ("ssl.keystore.password", "changeit", MASK),
        ("database.sslkey", "/etc/ssl/private.pem", MASK),
        ("consumer.override.sasl.oauthbearer.token.endpoint.url", "https://idp", MASK),
        ("aws.secret.access.key", "AKIA...", MASK),
        ("api.key", "abc", MASK),
        ("key.converter", "org.apache.kafka.connect.json.JsonConverter", "org.apache.kafka.connect.json.JsonConverter"),
        ("key.converter.schemas.enable", "false", "false"),
        ("database.user", "cdcsync_debezium", "cdcsync_debezium"),
        ("schema.history.url", "postgresql://ops:pa55@db:5432/x", f"postgresql://ops:{MASK}@db:5432/x"),
        ("database.hostname", "jdbc:postgresql://db:5432/course", "jdbc:postgresql://db:5432/course"),
    ],
)
def test_secrets_are_masked_and_placeholders_shown(key: str, value: str, shown: str) -> None:
    assert mask_value(key, value) == shown


def test_masked_config_is_sorted_and_keeps_every_key() -> None:
    config = {"z": "1", "database.password": "literal", "a": "2"}
    assert list(mask_config(config).items()) == [("a", "2"), ("database.password", MASK), ("z", "1")]


# --- output ----------------------------------------------------------------


def _info(state: str = "RUNNING", tasks: tuple[str, ...] = ("RUNNING",), **config: str) -> ConnectorInfo:
    status = {
        "name": "c1",
        "type": "source",
        "connector": {"state": state, "worker_id": "127.0.0.1:8083"},
        "tasks": [
            {"id": i, "state": s, "worker_id": "127.0.0.1:8083", "trace": "a.B: boom\n\tat x\nCaused by: c.D: why"}
            if s == "FAILED"
            else {"id": i, "state": s, "worker_id": "127.0.0.1:8083"}
            for i, s in enumerate(tasks)
        ],
    }
    return ConnectorInfo.from_json({"name": "c1", "config": {"connector.class": "io.X", **config}}, status)


def test_tasks_summary() -> None:
    assert tasks_summary(_info().status) == "1/1"
    assert tasks_summary(_info(tasks=("RUNNING", "FAILED", "PAUSED")).status) == "1/3 (1 FAILED, 1 PAUSED)"
    assert tasks_summary(_info(state="STOPPED", tasks=()).status) == "0/0"


def test_get_rows_are_sorted_by_name() -> None:
    other = ConnectorInfo.from_json({"name": "a0", "type": "source"}, {"name": "a0", "connector": {"state": "PAUSED"}})
    assert get_rows([_info(), other]) == [("a0", "source", "PAUSED", "0/0"), ("c1", "source", "RUNNING", "1/1")]


def test_json_and_yaml_are_stable_sorted_and_masked() -> None:
    info = _info(tasks=("FAILED",), **{"database.password": "hunter2", "b": "x"})
    document = connector_document(info, ["t2", "t1"])
    text = render(document, "json")
    assert "hunter2" not in text
    assert text == render(connector_document(info, ["t1", "t2"]), "json")
    parsed = json.loads(text)
    assert list(parsed) == sorted(parsed)
    assert parsed["config"]["database.password"] == MASK
    assert parsed["topics"] == ["t1", "t2"]
    assert parsed["tasks"] == [
        {"id": 0, "state": "FAILED", "worker": "127.0.0.1:8083", "trace": "a.B: boom (Caused by: c.D: why)"}
    ]
    assert yaml.safe_load(render(document, "yaml")) == parsed
    with pytest.raises(ValueError, match="unknown output format"):
        render(document, "xml")


def test_describe_shows_tasks_topics_worker_and_masked_config() -> None:
    text = "\n".join(describe_lines(_info(tasks=("FAILED",), **{"database.password": "hunter2"}), ["course.x"]))
    assert "hunter2" not in text
    assert MASK in text
    assert "Worker:  127.0.0.1:8083" in text
    assert "a.B: boom (Caused by: c.D: why)" in text
    assert "  course.x" in text


def test_after_reset_follows_the_snapshot_mode() -> None:
    assert "new snapshot" in after_reset("initial")
    assert "confirmed_flush_lsn" in after_reset("no_data")


# --- contexts --------------------------------------------------------------


def _contexts(tmp_path: Path, current: str | None = "prod") -> ContextsFile:
    prod = ConnectContext(
        "prod", "https://connect.prod:8083", "ops", "PROD_PASS", ca_cert=Path("/etc/ca.pem"), insecure=False
    )
    dev = ConnectContext("dev", "http://127.0.0.1:8083")
    return ContextsFile(tmp_path / "contexts.toml", current, {"prod": prod, "dev": dev})


def _local() -> str:
    return "http://127.0.0.1:18083"


def test_contexts_file_round_trips_without_a_password(tmp_path: Path) -> None:
    contexts = _contexts(tmp_path)
    contexts.save()
    assert ContextsFile.load(contexts.path) == contexts
    text = contexts.path.read_text(encoding="utf-8")
    assert 'password-env = "PROD_PASS"' in text
    assert stat.S_IMODE(contexts.path.stat().st_mode) == 0o600
    assert ContextsFile.load(tmp_path / "absent.toml").contexts == {}


def test_contexts_file_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[contexts.x]\nurl = "http://h:1"\npassword = "no"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"contexts\.x\.password: unknown key"):
        ContextsFile.load(path)
    with pytest.raises(ConfigError, match="holds credentials"):
        ConnectContext("x", "http://u:p@h:1")


def test_contexts_path_precedence(tmp_path: Path) -> None:
    assert contexts_path({"CDCSYNC_CONFIG": "/a/b.toml", "XDG_CONFIG_HOME": "/x"}) == Path("/a/b.toml")
    assert contexts_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/cdcsync/contexts.toml")
    assert contexts_path({}) == Path.home() / ".config" / "cdcsync" / "contexts.toml"


def test_option_or_env_url_beats_the_context_and_gets_none_of_its_credentials(tmp_path: Path) -> None:
    target = resolve_target(
        ConnectOverrides(url="http://other:8083", url_origin="CONNECT_URL"),
        _contexts(tmp_path),
        {"PROD_PASS": "s3cret"},
        _local,
    )
    assert (target.url, target.origin, target.auth) == ("http://other:8083", "CONNECT_URL", None)
    assert target.tls.ca_cert is None


def test_current_context_beats_the_local_stack_and_brings_its_credentials(tmp_path: Path) -> None:
    target = resolve_target(ConnectOverrides(), _contexts(tmp_path), {"PROD_PASS": "s3cret"}, _local)
    assert (target.url, target.origin) == ("https://connect.prod:8083", "context 'prod'")
    assert target.auth is not None
    assert (target.auth.username, target.auth.password) == ("ops", "s3cret")
    assert target.tls.ca_cert == Path("/etc/ca.pem")
    assert "s3cret" not in repr(target)


def test_options_beat_the_context_for_each_setting(tmp_path: Path) -> None:
    overrides = ConnectOverrides(username="admin", ca_cert=Path("/other-ca.pem"), insecure=True)
    target = resolve_target(overrides, _contexts(tmp_path), {"PROD_PASS": "s3cret"}, _local)
    assert target.auth is not None
    assert target.auth.username == "admin"
    assert target.tls.ca_cert == Path("/other-ca.pem")
    assert target.tls.insecure


def test_context_option_beats_the_current_context_and_local_stack_is_last(tmp_path: Path) -> None:
    target = resolve_target(ConnectOverrides(context="dev"), _contexts(tmp_path), {}, _local)
    assert (target.url, target.auth) == ("http://127.0.0.1:8083", None)
    fallback = resolve_target(ConnectOverrides(), _contexts(tmp_path, current=None), {}, _local)
    assert (fallback.url, fallback.origin) == (_local(), "the local stack")


def test_a_username_without_its_password_variable_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="PROD_PASS: not set"):
        resolve_target(ConnectOverrides(), _contexts(tmp_path), {}, _local)
    with pytest.raises(ConfigError, match="CONNECT_PASSWORD: not set"):
        resolve_target(ConnectOverrides(url="http://h:1", username="u"), _contexts(tmp_path), {}, _local)
    with pytest.raises(ConfigError, match="context 'nope'"):
        resolve_target(ConnectOverrides(context="nope"), _contexts(tmp_path), {}, _local)


# --- apply: loading definitions -----------------------------------------------


def test_load_specs_from_files_and_directories(tmp_path: Path) -> None:
    assert [s.name for s in load_specs([])] == ["cdcsync-assignment", "cdcsync-attendance", "cdcsync-course"]
    assert [s.name for s in load_specs([CONNECTORS_DIR / "course.json"])] == ["cdcsync-course"]
    assert len(load_specs([CONNECTORS_DIR, CONNECTORS_DIR / "course.json"])) == 3  # a file given twice counts once
    document = json.loads((CONNECTORS_DIR / "course.json").read_text(encoding="utf-8"))
    document["config"]["slot.name"] = "other_slot"
    (tmp_path / "copy.json").write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(ConfigError, match="is also used by"):
        load_specs([CONNECTORS_DIR / "course.json", tmp_path / "copy.json"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_specs([tmp_path / "missing.json"])


# --- waiting -----------------------------------------------------------------


class StatusSequence(ConnectClient):
    """A client whose status answers are scripted; time is simulated."""

    def __init__(self, states: list[str]) -> None:
        super().__init__("http://127.0.0.1:1")
        self.states = states
        self.now = 0.0

    def connector_status(self, name: str) -> ConnectorState:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        task = {"id": 0, "state": state, "worker_id": "w", "trace": "x.Y: broken" if state == "FAILED" else None}
        return ConnectorState.from_json({"name": name, "connector": {"state": "RUNNING"}, "tasks": [task]})

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _wait(client: StatusSequence, timeout: float = 10.0, settled: tuple[str, ...] = ()) -> list[ConnectorState]:
    return wait_for_state(
        client, ["c"], "RUNNING", timeout, settled=settled, clock=lambda: client.now, sleep=client.sleep
    )


def test_wait_returns_once_running() -> None:
    client = StatusSequence(["UNASSIGNED", "FAILED", "RUNNING"])
    assert _wait(client)[0].running
    assert client.now == 1.0


def test_wait_fails_at_once_for_a_failed_connector_nothing_will_restart() -> None:
    client = StatusSequence(["FAILED"])
    with pytest.raises(ConnectorFailed, match=r"c task 0 FAILED: x\.Y: broken"):
        _wait(client, settled=("c",))
    assert client.now == 0.0


def test_wait_gives_a_restarting_connector_until_the_deadline() -> None:
    with pytest.raises(ConnectorFailed):
        _wait(StatusSequence(["FAILED"]), timeout=3.0)
    with pytest.raises(ConnectTimeout, match="not RUNNING within 3s: c RUNNING"):
        _wait(StatusSequence(["UNASSIGNED"]), timeout=3.0)


# --- the command line ---------------------------------------------------------


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))


def test_every_command_has_help_that_shows_each_options_environment_variable() -> None:
    runner = CliRunner()
    for path, command in _commands(connectors):
        result = runner.invoke(connectors, [*path, "--help"], terminal_width=200)
        assert result.exit_code == 0, result.output
        for param in command.params:
            if isinstance(param, click.Option) and param.envvar:
                assert f"env var: {param.envvar}" in result.output, (path, param.name)
    help_text = runner.invoke(connectors, ["get", "--help"], terminal_width=200).output
    for variable in ("CONNECT_URL", "CONNECT_USERNAME", "CONNECT_CA_CERT", "CONNECT_INSECURE", "CDCSYNC_CONTEXT"):
        assert variable in help_text
    assert "confirmed_flush_lsn" in runner.invoke(connectors, ["offsets", "reset", "--help"]).output


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Mapping[str, Any]:
    monkeypatch.setenv("CDCSYNC_CONFIG", str(tmp_path / "contexts.toml"))
    for key in ("CONNECT_URL", "CONNECT_USERNAME", "CONNECT_PASSWORD", "CDCSYNC_CONTEXT", "CDCSYNC_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    return {"config": tmp_path / "contexts.toml"}


def test_credentials_in_the_url_are_refused_without_echoing_them(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated_env: Mapping[str, Any]
) -> None:
    run = run_cdcsync(monkeypatch, capsys, "connectors", "get", "--connect-url", "http://ops:hunter2@127.0.0.1:1")
    assert run.code == 2
    assert "hunter2" not in run.stdout + run.stderr
    assert "--connect-url: holds credentials" in run.stderr


def test_connection_refused_is_exit_5(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated_env: Mapping[str, Any]
) -> None:
    monkeypatch.setenv("CONNECT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("CONNECT_USERNAME", "ops")
    monkeypatch.setenv("CONNECT_PASSWORD", "hunter2")
    run = run_cdcsync(monkeypatch, capsys, "connectors", "describe", "x")
    assert run.code == 5
    assert "not reachable at http://127.0.0.1:1: is CONNECT_URL right?" in run.stderr
    assert "hunter2" not in run.stdout + run.stderr


def test_context_commands_manage_the_file(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], isolated_env: Mapping[str, Any]
) -> None:
    setting = ("connectors", "context", "set")
    assert run_cdcsync(monkeypatch, capsys, *setting, "prod", "--url", "https://c:8083", "--username", "ops").code == 0
    assert run_cdcsync(monkeypatch, capsys, *setting, "dev", "--url", "http://127.0.0.1:8083").code == 0
    rows = [
        line.split() for line in run_cdcsync(monkeypatch, capsys, "connectors", "context", "list").stdout.splitlines()
    ]
    assert rows[1:] == [  # the first context set became the current one
        ["dev", "http://127.0.0.1:8083", "-", "-"],
        ["*", "prod", "https://c:8083", "ops", "CONNECT_PASSWORD"],
    ]
    assert run_cdcsync(monkeypatch, capsys, "connectors", "context", "use", "dev").code == 0
    assert ContextsFile.load(isolated_env["config"]).current == "dev"
    as_json = json.loads(run_cdcsync(monkeypatch, capsys, "connectors", "context", "list", "-o", "json").stdout)
    assert as_json["contexts"]["prod"] == {
        "url": "https://c:8083",
        "username": "ops",
        "password-env": "CONNECT_PASSWORD",
    }
    assert run_cdcsync(monkeypatch, capsys, "connectors", "context", "use", "nope").code == 2
    assert run_cdcsync(monkeypatch, capsys, "connectors", "context", "delete", "dev").code == 0
    assert ContextsFile.load(isolated_env["config"]).current is None
