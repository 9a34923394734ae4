"""A single-node Kafka (combined KRaft broker and controller) on 127.0.0.1.

Runs ``kafka.Kafka`` from the pinned jars. Storage under ``<home>/kafka/data``
is formatted once, by ``kafka.tools.StorageTool format``, with a fixed cluster
id; later starts find ``meta.properties`` and reuse the data.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from pipeline.errors import StackError
from pipeline.settings import StackSettings
from pipeline.stack.jvm import JavaRuntime, JvmArtifacts, log4j2_properties, render_properties
from pipeline.stack.parts import PartStatus
from pipeline.stack.processes import ManagedProcess, port_accepts, port_in_use, wait_until

logger = logging.getLogger(__name__)

PART = "kafka"
BROKER_MAIN = "kafka.Kafka"
STORAGE_TOOL_MAIN = "kafka.tools.StorageTool"
# base64url of b"cdcsync-local-st": a fixed, valid 16-byte cluster id, so a
# reformatted data directory is still the same cluster to every client.
CLUSTER_ID = "Y2Rjc3luYy1sb2NhbC1zdA"
NODE_ID = 1
HEAP_MAX = "512m"


def broker_properties(settings: StackSettings, data_dir: Path) -> dict[str, str | int | bool]:
    """server.properties of the combined broker+controller; every internal topic has replication 1."""
    host = settings.host
    return {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{host}:{settings.kafka_controller_port}",
        "listeners": f"PLAINTEXT://{host}:{settings.kafka_port},CONTROLLER://{host}:{settings.kafka_controller_port}",
        "advertised.listeners": f"PLAINTEXT://{host}:{settings.kafka_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        # Topics are created on purpose (by Connect's topic creation, or by the
        # sink for its dead-letter topic), never by a typo in a consumer.
        "auto.create.topics.enable": False,
        "num.partitions": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "offsets.topic.replication.factor": 1,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        # Two cores: keep the thread pools small.
        "num.network.threads": 2,
        "num.io.threads": 2,
        "num.recovery.threads.per.data.dir": 1,
        "background.threads": 2,
    }


class LocalKafka:
    """The stack's Kafka. Construction touches nothing; ``start`` does the work."""

    def __init__(self, settings: StackSettings, artifacts: JvmArtifacts | None = None) -> None:
        self._settings = settings
        self._artifacts = artifacts or JvmArtifacts(settings)
        self._process = ManagedProcess(PART, settings.home)
        self._dir = settings.home / "kafka"

    @property
    def log_file(self) -> Path:
        return self._process.log_file

    @property
    def data_dir(self) -> Path:
        return self._dir / "data"

    @property
    def config_file(self) -> Path:
        return self._dir / "server.properties"

    @property
    def log4j_config(self) -> Path:
        return self._dir / "log4j2.properties"

    def start(self, timeout: float) -> None:
        """Start the broker and wait until it answers a metadata request. Idempotent."""
        if self._process.running_pid() is None:
            s = self._settings
            for port in (s.kafka_port, s.kafka_controller_port):
                if port_in_use(s.host, port):
                    raise StackError(PART, f"port {port} in use by a process cdcsync did not start", self.log_file)
            java = JavaRuntime.detect()
            self._artifacts.ensure()
            self._write_config()
            self._format_storage(java)
            argv = java.argv(
                self._artifacts.classpath,
                BROKER_MAIN,
                [str(self.config_file)],
                heap_max=HEAP_MAX,
                log4j_config=self.log4j_config,
            )
            self._process.start(argv, cwd=self._dir)
        try:
            wait_until(self._started_and_healthy, timeout, f"Kafka on {self._settings.kafka_bootstrap}")
        except TimeoutError as exc:
            raise StackError(PART, str(exc), self.log_file) from None

    def stop(self) -> bool:
        return self._process.stop(timeout=60.0)

    def status(self) -> PartStatus:
        pid = self._process.running_pid()
        if pid is None:
            return PartStatus(PART, False, "not running", self.log_file)
        topics = self._topic_count(timeout=5.0)
        if topics is None:
            return PartStatus(
                PART, False, f"pid {pid} runs but {self._settings.kafka_bootstrap} does not answer", self.log_file
            )
        detail = f"{self._settings.kafka_bootstrap} (pid {pid}, cluster {CLUSTER_ID}, {topics} topics)"
        return PartStatus(PART, True, detail, self.log_file)

    def _started_and_healthy(self) -> bool:
        if self._process.running_pid() is None:
            raise StackError(PART, "exited while starting", self.log_file)
        return self._topic_count(timeout=2.0) is not None

    def _topic_count(self, timeout: float) -> int | None:
        """Topics in a real metadata response, or ``None`` if the broker does not answer."""
        s = self._settings
        if not port_accepts(s.host, s.kafka_port):
            return None  # spares librdkafka's connection-refused log lines while it starts
        # log_level 0: a yes/no probe needs none of librdkafka's retry chatter on stderr.
        admin = AdminClient({"bootstrap.servers": s.kafka_bootstrap, "log_level": 0})
        try:
            metadata = admin.list_topics(timeout=timeout)
        except KafkaException:
            return None
        return len(metadata.topics)

    def _write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_properties(broker_properties(self._settings, self.data_dir)), "utf-8")
        # Per-partition chatter (state changes, loading the 50 offsets partitions) buries what matters.
        levels = {
            "kafka.request.logger": "WARN",
            "state.change.logger": "WARN",
            "org.apache.kafka.coordinator": "WARN",
        }
        self.log4j_config.write_text(log4j2_properties(levels), encoding="utf-8")

    def _format_storage(self, java: JavaRuntime) -> None:
        """Format the log directory on first start only (``meta.properties`` marks a formatted one)."""
        if (self.data_dir / "meta.properties").exists():
            return
        argv = java.argv(
            self._artifacts.classpath,
            STORAGE_TOOL_MAIN,
            ["format", "--cluster-id", CLUSTER_ID, "--config", str(self.config_file)],
            heap_max="256m",
            log4j_config=self.log4j_config,
        )
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("a", encoding="utf-8") as log:
            log.write("\n=== cdcsync: formatting Kafka storage\n")
            log.flush()
            try:
                done = subprocess.run(
                    argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=120, check=False
                )
            except subprocess.TimeoutExpired:
                raise StackError(PART, "formatting the storage took over 120s", self.log_file) from None
        if done.returncode != 0:
            raise StackError(PART, f"formatting the storage failed with exit code {done.returncode}", self.log_file)
