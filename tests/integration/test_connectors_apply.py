"""`cdcsync connectors apply` against the test stack's Kafka Connect.

Creating connectors is done with copies of the three shipped definitions, each on a database of its
own: deleting and re-creating the shipped connectors would break the sink that other tests rely on
(and, during a first snapshot, lose a table's rows). The shipped connectors are only read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import ConnectorSpec, load_connector_specs
from cdcsync.pipeline.cli import cli
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.endpoints import SERVICE_DATABASES
from cdcsync.pipeline.targets import Targets
from tests.integration.conftest import until
from tests.support.own_connector import OwnConnectors

pytestmark = pytest.mark.integration


@pytest.fixture
def client(pipeline: Targets) -> Iterator[ConnectClient]:
    with ConnectClient(pipeline.connect_url) as connect:
        yield connect


def _apply(connect_url: str, *args: str) -> dict[str, str]:
    result = CliRunner().invoke(cli, ["connectors", "apply", "--connect-url", connect_url, *args])
    assert result.exit_code == 0, result.output
    return dict(line.split(": ", 1) for line in result.stdout.splitlines())  # the preflight reports on stderr


def test_apply_creates_then_is_unchanged_and_connectors_run(
    client: ConnectClient, pipeline: Targets, own_connectors: OwnConnectors
) -> None:
    own = [own_connectors.make(service) for service in SERVICE_DATABASES]
    names = {connector.name for connector in own}
    files = [arg for connector in own for arg in ("-f", str(connector.file))]

    assert _apply(pipeline.connect_url, *files) == dict.fromkeys(names, "created")
    assert _apply(pipeline.connect_url, *files) == dict.fromkeys(names, "unchanged")

    def all_running() -> bool | None:
        states = client.list_connectors()
        failed = [t.trace for n in names if n in states for t in states[n].tasks if t.state == "FAILED"]
        if failed:
            pytest.fail(f"a connector task failed: {failed[0]}")
        return True if all(n in states and states[n].running for n in names) else None

    until("every connector and task to be RUNNING", all_running, timeout=120)

    status = CliRunner().invoke(cli, ["connectors", "status", "--connect-url", pipeline.connect_url])
    assert status.exit_code == 0, status.output
    rows = [line.split() for line in status.stdout.splitlines()[1:]]
    assert {row[0] for row in rows} >= names
    assert all(row[1] == "RUNNING" and row[3] == "RUNNING" for row in rows if row[0] in names), status.output


def test_the_shipped_connectors_run_as_shipped_with_placeholders_not_secrets(
    client: ConnectClient, pipeline: Targets
) -> None:
    specs: tuple[ConnectorSpec, ...] = load_connector_specs()
    # A dry run only: applying would update a shipped connector whose running config differed.
    planned = CliRunner().invoke(cli, ["connectors", "apply", "--connect-url", pipeline.connect_url, "--dry-run"])
    assert planned.exit_code == 0, planned.output
    assert sorted(planned.stdout.splitlines()) == sorted(f"{s.name}: would be unchanged" for s in specs), planned.stdout
    password = StackSettings.from_env().password
    for spec in specs:
        running = client.get_connector_config(spec.name)
        assert spec.matches(running)
        assert running["database.password"] == "${env:CDCSYNC_DEBEZIUM_PASSWORD}"
        assert password not in json.dumps(running)
