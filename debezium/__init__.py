"""Debezium connector definitions (data) and the Kafka Connect REST client.

- ``connector_spec``: the JSON files in ``connectors/`` as validated ``ConnectorSpec`` values.
- ``connect_client``: the REST client; it alone maps HTTP answers to exceptions.
- ``commands``: ``cdcsync connectors apply|status``.
"""

from cdcsync.debezium.connect_client import (
    ConnectClient,
    ConnectorNotFound,
    ConnectorPlugin,
    ConnectorState,
    ConnectRequestFailed,
    ConnectTimeout,
    ConnectUnreachable,
    RebalanceInProgress,
    TaskState,
)
from cdcsync.debezium.connector_spec import ConnectorSpec, ConnectorSpecError, load_connector_specs

__all__ = [
    "ConnectClient",
    "ConnectRequestFailed",
    "ConnectTimeout",
    "ConnectUnreachable",
    "ConnectorNotFound",
    "ConnectorPlugin",
    "ConnectorSpec",
    "ConnectorSpecError",
    "ConnectorState",
    "RebalanceInProgress",
    "TaskState",
    "load_connector_specs",
]
