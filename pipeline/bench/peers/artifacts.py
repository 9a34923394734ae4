"""What the bench's peers run from: the JVM artifacts of ``compose/bench-peers.pom`` and the Flink venv.

- The Debezium JDBC sink connector, unpacked as a Connect plugin in ``<home>/jvm/plugins`` beside the
  PostgreSQL connector. The worker's ``plugin.path`` is that directory, so a worker started after
  ``ensure`` loads it; nothing in the stack changes, and a stack that never runs the bench never has it.
- The Flink SQL connector jars in ``<home>/jvm/flink-jars`` (the job's ``pipeline.jars``).
- PyPI's apache-flink in a virtual environment of its own, ``.cdcsync/bench-peers/flink-venv``
  (``make bench-peers``; ~770 MB, so never created behind the user's back).

Maven runs only when the hash of the pom differs from the stamp of the last successful run.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

from cdcsync.pipeline.bench.peer import PeerUnavailable
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.jvm import COMPOSE_DIR, find_maven, run_maven

PEERS_POM = "bench-peers.pom"
JDBC_PLUGIN = "debezium-connector-jdbc"
JDBC_SINK_VERSION = "3.4.0.Final"
FLINK_VERSION = "1.20.5"
FLINK_CDC_VERSION = "3.5.0"
FLINK_JDBC_VERSION = "3.3.0-1.20"
POSTGRESQL_DRIVER_VERSION = "42.7.4"
FLINK_JARS = (
    f"flink-sql-connector-postgres-cdc-{FLINK_CDC_VERSION}.jar",
    f"flink-connector-jdbc-{FLINK_JDBC_VERSION}.jar",
    f"postgresql-{POSTGRESQL_DRIVER_VERSION}.jar",
)
REPO_DIR = COMPOSE_DIR.parent
FLINK_VENV = REPO_DIR / ".cdcsync" / "bench-peers" / "flink-venv"
MAKE_TARGET = "make bench-peers"


@dataclass(frozen=True)
class PeerArtifacts:
    """The peers' jars under ``<home>/jvm``, resolved from ``compose/bench-peers.pom``."""

    settings: StackSettings
    compose_dir: Path = COMPOSE_DIR

    @property
    def jvm_dir(self) -> Path:
        return self.settings.home / "jvm"

    @property
    def jdbc_plugin(self) -> Path:
        return self.jvm_dir / "plugins" / JDBC_PLUGIN

    @property
    def flink_jars_dir(self) -> Path:
        return self.jvm_dir / "flink-jars"

    @property
    def flink_jars(self) -> tuple[Path, ...]:
        return tuple(self.flink_jars_dir / name for name in FLINK_JARS)

    @property
    def pom(self) -> Path:
        return self.compose_dir / PEERS_POM

    @property
    def stamp_file(self) -> Path:
        return self.jvm_dir / "bench-peers.stamp"

    @property
    def log_file(self) -> Path:
        return self.settings.home / "logs" / "maven-bench-peers.log"

    def stamp(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()

    def is_current(self) -> bool:
        try:
            recorded = self.stamp_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return False
        plugin_jar = self.jdbc_plugin / f"{JDBC_PLUGIN}-{JDBC_SINK_VERSION}.jar"
        return recorded == self.stamp() and plugin_jar.is_file() and all(jar.is_file() for jar in self.flink_jars)

    def ensure(self, timeout: float = 1200.0) -> bool:
        """Resolve the jars unless they are current; returns whether Maven ran.

        Raises ``PeerUnavailable`` saying why when Maven is missing or fails.
        """
        if self.is_current():
            return False
        try:
            mvn = find_maven()
            for stale in (self.jdbc_plugin, self.flink_jars_dir):
                shutil.rmtree(stale, ignore_errors=True)
            run_maven(mvn, self.pom, self.jvm_dir, self.log_file, timeout)
        except Exception as exc:
            raise PeerUnavailable(f"the peers' jars could not be resolved from {self.pom.name}: {exc}") from exc
        self.stamp_file.write_text(self.stamp() + "\n", encoding="utf-8")
        return True


def flink_python() -> Path:
    """The Flink venv's python; ``PeerUnavailable`` naming ``make bench-peers`` when it is not installed."""
    python = FLINK_VENV / "bin" / "python"
    pyflink = next(FLINK_VENV.glob("lib/python3*/site-packages/pyflink/lib"), None)
    if not python.is_file() or pyflink is None:
        raise PeerUnavailable(
            f"apache-flink=={FLINK_VERSION} is not installed in {FLINK_VENV} (about 770 MB); run `{MAKE_TARGET}`"
        )
    return python
