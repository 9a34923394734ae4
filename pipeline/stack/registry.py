"""The local stack's opt-in schema registry: Apicurio Registry with its Confluent-compatible API.

Wanted only for the Avro change format (``CDCSYNC_CHANGE_FORMAT=avro`` or
``cdcsync stack up --format avro``): with the default, JSON, nothing here is
resolved, started or waited for. Its distribution (a Quarkus ``-runner.jar``
with ``lib/``, ~142 MB) comes from ``compose/registry.pom``, a pom of its own,
so only a stack that wants the registry ever downloads it.

It runs on Java 17 with its H2 database in files under ``<home>/registry/data``
(the distribution's default is in memory): schemas and their ids survive a
restart, as they must, since the topics keep records framed with those ids.
``stack down`` keeps the files; removing the home removes them. Its config is
``<home>/registry/config/application.properties``, which Quarkus reads from the
working directory; it logs to ``<home>/logs/registry.log``.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack.jvm import COMPOSE_DIR, JavaRuntime, find_maven, render_properties, run_maven
from cdcsync.pipeline.stack.jvm_part import JvmPart
from cdcsync.pipeline.stack.parts import PartStatus

PART = "registry"
APICURIO_VERSION = "2.6.13.Final"
RUNNER_JAR = f"apicurio-registry-app-{APICURIO_VERSION}-runner.jar"
REGISTRY_POM = "registry.pom"
HEAP_MAX = "256m"
HEALTH_PATH = "/health/ready"
# Narayana (the transaction manager inside) names its process by default with a
# socket: a ServerSocket on a random loopback port, opened at the first write and
# held for life. A UUID names it as well and listens on nothing.
NARAYANA_PROCESS_ID = "CoreEnvironmentBean.processImplementationClassName"
UUID_PROCESS_ID = "com.arjuna.ats.internal.arjuna.utils.UuidProcessId"
CCOMPAT_PATH = "/apis/ccompat/v7"
COMPATIBILITY = "BACKWARD"  # the global compatibility rule
DATABASE_NAME = "registry_db"


@dataclass(frozen=True)
class RegistryArtifacts:
    """The unpacked distribution under ``<home>/jvm/registry``, resolved from ``compose/registry.pom``."""

    settings: StackSettings
    compose_dir: Path = COMPOSE_DIR

    @property
    def root(self) -> Path:
        return self.settings.home / "jvm" / "registry"

    @property
    def runner_jar(self) -> Path:
        return self.root / RUNNER_JAR

    @property
    def pom(self) -> Path:
        return self.compose_dir / REGISTRY_POM

    @property
    def stamp_file(self) -> Path:
        return self.root / "stamp"

    @property
    def log_file(self) -> Path:
        return self.settings.home / "logs" / "maven-registry.log"

    def stamp(self) -> str:
        """A hash of registry.pom and of pom.xml, its parent, which pins ``version.apicurio``."""
        digest = hashlib.sha256(self.pom.read_bytes())
        digest.update(b"\0" + (self.compose_dir / "pom.xml").read_bytes())
        return digest.hexdigest()

    def is_current(self) -> bool:
        try:
            recorded = self.stamp_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return False
        return recorded == self.stamp() and self.runner_jar.is_file() and (self.root / "lib").is_dir()

    def ensure(self, timeout: float = 1200.0) -> bool:
        """Resolve and unpack the distribution unless it is current. Returns True if Maven ran."""
        if not self.pom.is_file():
            raise StackError(PART, f"{self.pom} not found; run cdcsync from its source checkout")
        if self.is_current():
            return False
        mvn = find_maven()
        shutil.rmtree(self.root, ignore_errors=True)
        run_maven(mvn, self.pom, self.root.parent, self.log_file, timeout)
        if not self.runner_jar.is_file():
            raise StackError(PART, f"Maven ran but {self.runner_jar} is missing", self.log_file)
        self.stamp_file.write_text(self.stamp() + "\n", encoding="utf-8")
        return True


def registry_properties(settings: StackSettings) -> dict[str, str | int | bool]:
    """``application.properties`` of the registry: loopback only, on the stack's registry port, its
    H2 database in files under ``<home>/registry/data`` (the distribution's default is in memory), and
    BACKWARD compatibility as the global rule (a new schema of a subject must read what the previous
    one wrote, Confluent's default), so an incompatible source change stops at the registry."""
    return {
        "quarkus.http.host": settings.host,
        "quarkus.http.port": settings.registry_port,
        "quarkus.datasource.jdbc.url": f"jdbc:h2:file:{settings.registry_data_dir / DATABASE_NAME}",
        "registry.rules.global.compatibility": COMPATIBILITY,
    }


def registry_argv(java: JavaRuntime, runner_jar: Path) -> list[str]:
    """The registry's command line: the runner jar on a modest heap (it settles at ~210 MB RSS).

    Narayana reads its settings from system properties only, hence the one ``-D``;
    the rest of the config is in ``application.properties``.
    """
    return [
        str(java.executable),
        "-Xms64m",
        f"-Xmx{HEAP_MAX}",
        "-XX:+UseSerialGC",
        "-Djava.awt.headless=true",
        f"-D{NARAYANA_PROCESS_ID}={UUID_PROCESS_ID}",
        "-jar",
        str(runner_jar),
    ]


class LocalRegistry(JvmPart):
    """The stack's schema registry. Construction touches nothing; ``start`` does the work."""

    name = PART
    title = "the schema registry"
    heap_max = HEAP_MAX
    config_name = "config/application.properties"

    def __init__(self, settings: StackSettings, artifacts: RegistryArtifacts | None = None) -> None:
        super().__init__(settings)
        self._registry_artifacts = artifacts or RegistryArtifacts(settings)

    def is_running(self) -> bool:
        """Whether the process this stack started runs (no request is made)."""
        return self._process.running_pid() is not None

    @property
    def _address(self) -> str:
        return self._settings.registry_url

    def _ports(self) -> tuple[int, ...]:
        return (self._settings.registry_port,)

    def _properties(self) -> Mapping[str, str | int | bool]:
        return registry_properties(self._settings)

    def ensure_artifacts(self) -> bool:
        """Resolve the distribution unless it is current (``LocalStack.up`` does it before starting anything)."""
        return self._registry_artifacts.ensure()

    def _ensure_artifacts(self) -> None:
        self.ensure_artifacts()

    def _argv(self, java: JavaRuntime) -> list[str]:
        return registry_argv(java, self._registry_artifacts.runner_jar)

    def _write_config(self) -> None:
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self._settings.registry_data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text(render_properties(self._properties()), encoding="utf-8")

    def _base(self) -> str:
        return f"http://{self._settings.host}:{self._settings.registry_port}"

    def _healthy(self) -> bool:
        try:
            response = requests.get(f"{self._base()}{HEALTH_PATH}", timeout=5)
            return response.ok and response.json().get("status") == "UP"
        except (requests.RequestException, ValueError, AttributeError):
            return False

    def _running_status(self, pid: int) -> PartStatus:
        url = self._address
        try:
            response = requests.get(f"{url}/subjects", timeout=5)
            response.raise_for_status()
            subjects = response.json()
        except (requests.RequestException, ValueError) as exc:
            detail = f"pid {pid} runs but {url} does not answer ({type(exc).__name__})"
            return PartStatus(PART, False, detail, self.log_file)
        count = len(subjects) if isinstance(subjects, list) else "?"
        detail = f"{url} (pid {pid}, Apicurio Registry {APICURIO_VERSION}, {count} subjects)"
        return PartStatus(PART, True, detail, self.log_file)
