"""`cdcsync connectors apply` against the test stack's Kafka Connect.

The test deletes and re-creates the shipped connectors: Connect keeps their
offsets and PostgreSQL their slots, so they resume where they were instead of
snapshotting again.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from debezium.connect_client import ConnectClient, ConnectorNotFound
from debezium.connector_spec import ConnectorSpec, load_connector_specs
from pipeline.cli import cli
from pipeline.errors import ConnectError
from pipeline.settings import StackSettings
from pipeline.targets import Targets
from tests.integration.conftest import until

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def connect_url(pipeline: Targets) -> str:
    """The test stack's Connect, with the source schemas and the connectors in place (tests/integration/conftest.py)."""
    return pipeline.connect_url


@pytest.fixture(scope="module")
def client(connect_url: str) -> Iterator[ConnectClient]:
    with ConnectClient(connect_url) as connect:
        try:
            connect.plugins()
        except ConnectError as exc:
            pytest.fail(f"no Kafka Connect at {connect_url} ({exc})")
        yield connect


@pytest.fixture(scope="module")
def specs() -> tuple[ConnectorSpec, ...]:
    return load_connector_specs()


def _apply(connect_url: str) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["connectors", "apply", "--connect-url", connect_url])
    assert result.exit_code == 0, result.output
    return dict(line.split(": ", 1) for line in result.stdout.splitlines())  # the preflight reports on stderr


def _absent(client: ConnectClient, names: set[str]) -> bool | None:
    return True if not names & set(client.list_connectors()) else None


def test_apply_creates_then_is_unchanged_and_connectors_run(
    client: ConnectClient, connect_url: str, specs: tuple[ConnectorSpec, ...]
) -> None:
    names = {spec.name for spec in specs}
    for name in names & set(client.list_connectors()):
        with contextlib.suppress(ConnectorNotFound):  # deleted meanwhile
            client.delete_connector(name)
    until("the old connectors to be removed", lambda: _absent(client, names))

    assert _apply(connect_url) == dict.fromkeys(names, "created")
    assert _apply(connect_url) == dict.fromkeys(names, "unchanged")

    def all_running() -> bool | None:
        states = client.list_connectors()
        failed = [t.trace for n in names if n in states for t in states[n].tasks if t.state == "FAILED"]
        if failed:
            pytest.fail(f"a connector task failed: {failed[0]}")
        return True if all(n in states and states[n].running for n in names) else None

    until("every connector and task to be RUNNING", all_running)

    status = CliRunner().invoke(cli, ["connectors", "status", "--connect-url", connect_url])
    assert status.exit_code == 0, status.output
    rows = [line.split() for line in status.stdout.splitlines()[1:]]
    assert {row[0] for row in rows} >= names
    assert all(row[1] == "RUNNING" and row[3] == "RUNNING" for row in rows if row[0] in names), status.output


def test_running_config_shows_placeholders_not_secrets(
    client: ConnectClient, connect_url: str, specs: tuple[ConnectorSpec, ...]
) -> None:
    _apply(connect_url)
    password = StackSettings.from_env().password
    for spec in specs:
        running = client.get_connector_config(spec.name)
        assert spec.matches(running)
        assert running["database.password"] == "${env:CDCSYNC_DEBEZIUM_PASSWORD}"
        assert password not in json.dumps(running)
