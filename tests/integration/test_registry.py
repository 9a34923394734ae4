"""The opt-in schema registry alone (no other part): it starts, stores an Avro schema, serves it by id, stops.

It brings the registry up under a temporary home on the port after CDCSYNC_REGISTRY_PORT (the
session stack's registry may hold that one), from the distribution unpacked once under the test
stack's home (``jvm/registry``).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import psutil
import pytest
import requests

from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.processes import ManagedProcess
from cdcsync.pipeline.stack.registry import PART, LocalRegistry, RegistryArtifacts

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SCHEMA = {
    "type": "record",
    "name": "Value",
    "namespace": "cdcsync.test",
    "fields": [{"name": "id", "type": "long"}, {"name": "title", "type": ["null", "string"], "default": None}],
}
JSON_TYPE = "application/vnd.schemaregistry.v1+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[tuple[StackSettings, LocalRegistry]]:
    # A port of its own: the session stack's registry may be running on CDCSYNC_REGISTRY_PORT.
    session = StackSettings.from_env()
    own_port = str(session.registry_port + 1)
    settings = StackSettings.from_env(
        {**os.environ, "CDCSYNC_HOME": str(tmp_path / "home"), "CDCSYNC_REGISTRY_PORT": own_port}
    )
    part = LocalRegistry(settings, RegistryArtifacts(session))
    try:
        part.start(timeout=120)
        yield settings, part
    finally:
        part.stop()


def test_registry_stores_and_serves_an_avro_schema(registry: tuple[StackSettings, LocalRegistry]) -> None:
    settings, part = registry
    url = settings.registry_url
    subject = f"cdcsync-test-{uuid.uuid4().hex[:8]}-value"
    body = {"schemaType": "AVRO", "schema": json.dumps(SCHEMA)}

    posted = requests.post(f"{url}/subjects/{subject}/versions", json=body, headers={"Content-Type": JSON_TYPE})
    assert posted.status_code == 200, posted.text
    schema_id = posted.json()["id"]
    assert isinstance(schema_id, int)
    again = requests.post(f"{url}/subjects/{subject}/versions", json=body, headers={"Content-Type": JSON_TYPE})
    assert again.json()["id"] == schema_id  # the same schema is the same id

    by_id = requests.get(f"{url}/schemas/ids/{schema_id}", timeout=10)
    assert by_id.status_code == 200, by_id.text
    assert json.loads(by_id.json()["schema"]) == SCHEMA
    assert subject in requests.get(f"{url}/subjects", timeout=10).json()

    status = part.status()
    assert status.running, status.detail
    assert "Apicurio Registry 2.6.13.Final" in status.detail

    pid = ManagedProcess(PART, settings.home).running_pid()
    assert pid is not None
    listening = {c.laddr for c in psutil.Process(pid).net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    assert {(address.ip.removeprefix("::ffff:"), address.port) for address in listening} == {
        (settings.host, settings.registry_port)
    }

    assert part.stop()
    assert not part.is_running()
    assert not part.status().running


def _register(url: str, subject: str, schema: Mapping[str, object]) -> int:
    body = {"schemaType": "AVRO", "schema": json.dumps(schema)}
    posted = requests.post(f"{url}/subjects/{subject}/versions", json=body, headers={"Content-Type": JSON_TYPE})
    assert posted.status_code == 200, posted.text
    schema_id = posted.json()["id"]
    assert isinstance(schema_id, int)
    return schema_id


def test_schemas_and_their_ids_survive_a_restart(registry: tuple[StackSettings, LocalRegistry]) -> None:
    settings, part = registry
    url = settings.registry_url
    subject = f"cdcsync-test-{uuid.uuid4().hex[:8]}-value"
    first = _register(url, subject, SCHEMA)

    assert part.stop()
    part.start(timeout=120)

    by_id = requests.get(f"{url}/schemas/ids/{first}", timeout=10)
    assert by_id.status_code == 200, by_id.text
    assert json.loads(by_id.json()["schema"]) == SCHEMA
    assert subject in requests.get(f"{url}/subjects", timeout=10).json()
    # A new schema after the restart gets a new id: an in-memory registry would hand out `first` again.
    room = {"name": "room", "type": ["null", "string"], "default": None}
    widened = {**SCHEMA, "fields": [*SCHEMA["fields"], room]}
    assert _register(url, f"cdcsync-test-{uuid.uuid4().hex[:8]}-value", widened) != first
    assert _register(url, subject, SCHEMA) == first


def _record(*fields: Mapping[str, object]) -> dict[str, object]:
    return {"type": "record", "name": "Value", "namespace": "cdcsync.test", "fields": list(fields)}


ID: Mapping[str, object] = {"name": "id", "type": "long"}
SCORE_6_2: Mapping[str, object] = {
    "name": "score",
    "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2},
}
SCORE_8_2: Mapping[str, object] = {
    "name": "score",
    "type": {"type": "bytes", "logicalType": "decimal", "precision": 8, "scale": 2},
}
NULLABLE_URL: Mapping[str, object] = {"name": "url", "type": ["null", "string"], "default": None}
REQUIRED_ROOM: Mapping[str, object] = {"name": "room", "type": "string"}


def test_the_global_backward_rule_passes_added_nullable_and_widened_and_refuses_a_required_field(
    registry: tuple[StackSettings, LocalRegistry],
) -> None:
    url = registry[0].registry_url
    subject = f"cdcsync-test-{uuid.uuid4().hex[:8]}-value"

    def post(schema: dict[str, object]) -> requests.Response:
        body = {"schemaType": "AVRO", "schema": json.dumps(schema)}
        return requests.post(f"{url}/subjects/{subject}/versions", json=body, headers={"Content-Type": JSON_TYPE})

    assert post(_record(ID, SCORE_6_2)).status_code == 200
    added_and_widened = post(_record(ID, SCORE_8_2, NULLABLE_URL))
    assert added_and_widened.status_code == 200, added_and_widened.text
    refused = post(_record(ID, SCORE_8_2, NULLABLE_URL, REQUIRED_ROOM))
    assert refused.status_code == 409, refused.text
    assert "Incompatible" in refused.text and "room" in refused.text
