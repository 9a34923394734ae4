"""The fault suite's own stack: it kills and restarts parts, so it shares nothing with other tests.

It lives under ``.cdcsync/fault-stack`` on ports derived from ``CDCSYNC_FAULT_PORT_BASE``
(default 36400; base+32 PostgreSQL, +92/+93 Kafka and its controller, +83 Connect). The sink
reaches Kafka and the calendar database through toxiproxy (API on base+74): PostgreSQL
through base+33, Kafka through base+95 to a broker listener on base+94 that advertises the
proxy's address, so the sink's connections after bootstrap go through the proxy too.
Debezium, the workload and verify connect directly.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
from pathlib import Path

import psycopg

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connector_spec import load_connector_specs
from cdcsync.pipeline.lifecycle import apply_connectors_and_wait, prepare_sources
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.connect import LocalConnect
from cdcsync.pipeline.stack.endpoints import StackEndpoints
from cdcsync.pipeline.stack.jvm import JvmArtifacts
from cdcsync.pipeline.stack.kafka import LocalKafka, ProxiedListener
from cdcsync.pipeline.stack.local_stack import LocalStack
from cdcsync.pipeline.stack.postgres import LocalPostgres
from cdcsync.pipeline.stack.processes import ManagedProcess, port_in_use, wait_until
from cdcsync.pipeline.targets import Targets
from tests.faults.toxiproxy import Toxiproxy

REPO = Path(__file__).resolve().parents[2]
HOME = REPO / ".cdcsync" / "fault-stack"
PART_TIMEOUT_S = 180.0
KAFKA_PROXY = "sink-kafka"
POSTGRES_PROXY = "sink-postgres"


class FaultStack:
    """PostgreSQL, Kafka and Connect with Debezium, toxiproxy in front of the sink. Construction touches nothing."""

    def __init__(self, base_port: int, home: Path = HOME) -> None:
        self.env = {
            "CDCSYNC_HOME": str(home),
            "CDCSYNC_PG_PORT": str(base_port + 32),
            "CDCSYNC_KAFKA_PORT": str(base_port + 92),
            "CDCSYNC_KAFKA_CONTROLLER_PORT": str(base_port + 93),
            "CDCSYNC_CONNECT_PORT": str(base_port + 83),
        }
        self.settings = StackSettings.from_env({**os.environ, **self.env})
        self._proxied = ProxiedListener(port=base_port + 94, proxy_port=base_port + 95)
        self._postgres_proxy_port = base_port + 33
        artifacts = JvmArtifacts(self.settings)
        self.postgres = LocalPostgres(self.settings)
        self.kafka = LocalKafka(self.settings, artifacts, self._proxied)
        self.connect = LocalConnect(self.settings, artifacts)
        self._stack = LocalStack(
            self.settings, artifacts=artifacts, postgres=self.postgres, kafka=self.kafka, connect=self.connect
        )
        self.toxiproxy = Toxiproxy(home, self.settings.host, base_port + 74)
        self.targets = Targets.local_stack(self.settings)

    @property
    def sink_targets(self) -> Targets:
        """The targets with the sink's Kafka and calendar database behind toxiproxy."""
        behind_proxy = dataclasses.replace(self.settings, postgres_port=self._postgres_proxy_port)
        return self.targets.with_values(
            KAFKA_BOOTSTRAP_SERVERS=f"{self.settings.host}:{self._proxied.proxy_port}",
            CDCSYNC_SINK_DB_URL=StackEndpoints(behind_proxy).sink_url,
        )

    def process_env(self) -> dict[str, str]:
        """The environment of a ``cdcsync`` process that works on this stack."""
        return {**os.environ, **self.env}

    def up_from_scratch(self) -> None:
        """Stop whatever an earlier run left, wipe its state (the resolved jars stay), and bring everything up:
        parts, proxies, source schemas with the demo data, connectors RUNNING."""
        self.down()
        for entry in self.settings.home.glob("*"):
            if entry.is_dir() and entry.name != "jvm":
                shutil.rmtree(entry)
            elif not entry.is_dir():
                entry.unlink()
        self._stack.up(timeout=PART_TIMEOUT_S)
        self.toxiproxy.start()
        self.toxiproxy.create(KAFKA_PROXY, self._proxied.proxy_port, self._proxied.port)
        self.toxiproxy.create(POSTGRES_PROXY, self._postgres_proxy_port, self.settings.postgres_port)
        prepare_sources(self.settings, demo_data=True)
        apply_connectors_and_wait(self.targets.connect_url, self.targets.kafka_bootstrap_servers, PART_TIMEOUT_S)
        wait_until(self._snapshots_committed, PART_TIMEOUT_S, "each connector's offset past its initial snapshot")

    def _snapshots_committed(self) -> bool:
        """Each connector has committed a streaming offset, so a restarted worker streams on from it.

        Until then a killed worker snapshots again, and a row deleted between the two snapshots
        is never deleted downstream: that window belongs to the initial snapshot, not to these faults."""
        with ConnectClient(self.targets.connect_url) as client:
            offsets = [client.get_offsets(spec.name) for spec in load_connector_specs()]
        return all(found and all("snapshot" not in o.get("offset", {}) for o in found) for found in offsets)

    def ensure_running(self) -> None:
        """Start any part that is not running (a scenario that failed may have left one down). Idempotent."""
        self.postgres.start(PART_TIMEOUT_S)
        self.kafka.start(PART_TIMEOUT_S)
        self.connect.start(PART_TIMEOUT_S)
        self.toxiproxy.reset()

    def down(self) -> None:
        self.toxiproxy.stop()
        self._stack.down()

    def sigkill(self, part: str) -> int:
        """SIGKILL a JVM part ("kafka" or "connect") and wait until it is gone; its pid."""
        process = ManagedProcess(part, self.settings.home)
        pid = process.running_pid()
        if pid is None:
            raise AssertionError(f"{part} is not running, there is nothing to kill")
        os.killpg(pid, signal.SIGKILL)  # each part leads its own process group
        wait_until(lambda: process.running_pid() is None, 30, f"{part} (pid {pid}) to die")
        # Its connections linger a moment after it (FIN_WAIT until each client closes its end),
        # and hold its ports: a restart must wait for them as an operator's would.
        s = self.settings
        ports = {"kafka": (s.kafka_port, s.kafka_controller_port, self._proxied.port), "connect": (s.connect_port,)}
        wait_until(lambda: not any(port_in_use(s.host, p) for p in ports[part]), 60, f"{part}'s ports to be free")
        return pid

    def replication_slots_active(self) -> bool:
        """Every connector's replication slot has a walsender: Debezium streams from each database."""
        with psycopg.connect(StackEndpoints(self.settings).admin_url()) as conn:
            rows = conn.execute("SELECT active FROM pg_replication_slots WHERE slot_type = 'logical'").fetchall()
        return len(rows) == len(load_connector_specs()) and all(active for (active,) in rows)
