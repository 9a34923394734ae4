"""Java and Maven for the local stack, and the pinned jars Maven resolves.

``compose/pom.xml`` pins every artifact. ``JvmArtifacts.ensure`` runs Maven
only when the hash of the poms differs from the stamp written by the last
successful run, so a warm ``stack up`` runs no Maven and downloads nothing.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdcsync.pipeline.errors import StackError
from cdcsync.pipeline.settings import StackSettings

logger = logging.getLogger(__name__)

MIN_JAVA = 17
MIN_MAVEN = (3, 8)
COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"
DEBEZIUM_PLUGIN = "debezium-connector-postgres"
CONVERTER_PLUGIN = "apicurio-registry-converter"
# The worker discovers plugins by their ServiceLoader manifests only (plugin.discovery=service_load);
# Apicurio's converter jar ships none, so the stack adds one, as Kafka's `connect-plugin-path
# sync-manifests` would: a jar holding nothing but META-INF/services/<interface>.
CONVERTER_MANIFEST_JAR = "cdcsync-service-manifest.jar"
CONVERTER_SERVICES: Mapping[str, tuple[str, ...]] = {
    "org.apache.kafka.connect.storage.Converter": ("io.apicurio.registry.utils.converter.AvroConverter",),
}

_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')
_MAVEN_VERSION = re.compile(r"Apache Maven (\d+)\.(\d+)")


def parse_java_major(version_output: str) -> int | None:
    """The feature release from ``java -version`` output: 17 for "17.0.15", 8 for "1.8.0_392"."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def parse_maven_version(version_output: str) -> tuple[int, int] | None:
    match = _MAVEN_VERSION.search(version_output)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def _run_version(argv: Sequence[str], env: Mapping[str, str] | None = None) -> str:
    """stdout+stderr of a ``-version`` call; empty if it cannot run."""
    try:
        done = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=60, check=False, env=None if env is None else dict(env)
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout + done.stderr


@dataclass(frozen=True)
class JavaRuntime:
    executable: Path
    major: int

    @classmethod
    def detect(cls, env: Mapping[str, str] | None = None) -> JavaRuntime:
        """The java of ``JAVA_HOME``, else the first on PATH; must be 17 or newer."""
        env = os.environ if env is None else env
        java_home = env.get("JAVA_HOME")
        if java_home:
            candidate: str | None = str(Path(java_home) / "bin" / "java")
        else:
            candidate = shutil.which("java", path=env.get("PATH"))
        fix = "install a JDK/JRE 17 or newer (e.g. openjdk-17-jre-headless) or set JAVA_HOME to one"
        if candidate is None or not os.access(candidate, os.X_OK):
            where = f"JAVA_HOME={java_home}" if java_home else "PATH"
            raise StackError("java", f"Java {MIN_JAVA}+ not found (no java in {where}); {fix}")
        major = parse_java_major(_run_version([candidate, "-version"]))
        if major is None or major < MIN_JAVA:
            found = "an unknown version" if major is None else f"Java {major}"
            raise StackError("java", f"Java {MIN_JAVA}+ not found ({candidate} is {found}); {fix}")
        return cls(executable=Path(candidate), major=major)

    def argv(
        self, classpath: str, main_class: str, args: Sequence[str], *, heap_max: str, log4j_config: Path
    ) -> list[str]:
        """The command line of one of our JVMs (the broker, the formatter, the Connect worker)."""
        return [
            str(self.executable),
            "-Xms128m",
            f"-Xmx{heap_max}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j_config}",
            "-cp",
            classpath,
            main_class,
            *args,
        ]


def log4j2_properties(levels: Mapping[str, str] | None = None) -> str:
    """A log4j2 configuration that logs to stdout, which ``ManagedProcess`` sends to the part's log file.

    ``levels`` maps logger names to levels, e.g. ``{"org.reflections": "ERROR"}``.
    """
    properties: dict[str, str | int | bool] = {
        "status": "warn",
        "name": "cdcsync",
        "appender.stdout.type": "Console",
        "appender.stdout.name": "STDOUT",
        "appender.stdout.target": "SYSTEM_OUT",
        "appender.stdout.layout.type": "PatternLayout",
        "appender.stdout.layout.pattern": "[%d] %p %m (%c)%n",
        "rootLogger.level": "INFO",
        "rootLogger.appenderRef.stdout.ref": "STDOUT",
    }
    for index, (name, level) in enumerate(sorted((levels or {}).items())):
        properties[f"logger.l{index}.name"] = name
        properties[f"logger.l{index}.level"] = level
    return render_properties(properties)


def render_properties(properties: Mapping[str, str | int | bool]) -> str:
    """Java properties text, one ``key=value`` per line in the given order."""
    lines = []
    for key, value in properties.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if "\n" in text or "\n" in key:
            raise ValueError(f"property {key!r} must be a single line")
        # Backslashes are escapes in .properties files (Windows paths, regexes).
        escaped = text.replace("\\", "\\\\")
        lines.append(f"{key}={escaped}")
    return "\n".join(lines) + "\n"


def pom_stamp(compose_dir: Path) -> str:
    """A hash over every pom under ``compose_dir``: it changes exactly when a pinned version does."""
    digest = hashlib.sha256()
    for pom in sorted(compose_dir.rglob("pom.xml")):
        relative = pom.relative_to(compose_dir)
        if "target" in relative.parts:
            continue
        digest.update(relative.as_posix().encode() + b"\0" + pom.read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class JvmArtifacts:
    """The jars of the stack under ``<home>/jvm``: Kafka's classpath and the Connect plugin path."""

    settings: StackSettings
    compose_dir: Path = COMPOSE_DIR

    @property
    def root(self) -> Path:
        return self.settings.home / "jvm"

    @property
    def kafka_libs(self) -> Path:
        return self.root / "kafka-libs"

    @property
    def plugin_path(self) -> Path:
        return self.root / "plugins"

    @property
    def debezium_plugin(self) -> Path:
        return self.plugin_path / DEBEZIUM_PLUGIN

    @property
    def converter_plugin(self) -> Path:
        return self.plugin_path / CONVERTER_PLUGIN

    @property
    def stamp_file(self) -> Path:
        return self.root / "stamp"

    @property
    def log_file(self) -> Path:
        return self.settings.home / "logs" / "maven.log"

    @property
    def classpath(self) -> str:
        # The JVM expands "dir/*" to every jar in dir.
        return str(self.kafka_libs / "*")

    def is_current(self) -> bool:
        """True if the jars on disk were resolved from the poms as they are now."""
        try:
            recorded = self.stamp_file.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return False
        return (
            recorded == pom_stamp(self.compose_dir)
            and any(self.kafka_libs.glob("kafka_*.jar"))
            and any(self.debezium_plugin.glob(f"{DEBEZIUM_PLUGIN}-*.jar"))
            and (self.converter_plugin / CONVERTER_MANIFEST_JAR).is_file()
        )

    def ensure(self, timeout: float = 1200.0) -> bool:
        """Resolve the jars unless they are current. Returns True if Maven ran.

        Idempotent. Stale jars are removed first, so a version bump never
        leaves two versions of a jar on one classpath.
        """
        if not (self.compose_dir / "pom.xml").is_file():
            raise StackError("jvm", f"{self.compose_dir / 'pom.xml'} not found; run cdcsync from its source checkout")
        if self.is_current():
            return False
        mvn = find_maven()
        for stale in (self.kafka_libs, self.debezium_plugin, self.converter_plugin):
            shutil.rmtree(stale, ignore_errors=True)
        run_maven(mvn, self.compose_dir / "pom.xml", self.root, self.log_file, timeout)
        write_service_manifest(self.converter_plugin / CONVERTER_MANIFEST_JAR, CONVERTER_SERVICES)
        self.stamp_file.write_text(pom_stamp(self.compose_dir) + "\n", encoding="utf-8")
        return True


def write_service_manifest(jar: Path, services: Mapping[str, Sequence[str]]) -> None:
    """A jar of ServiceLoader manifests only: ``META-INF/services/<interface>`` listing its implementations."""
    jar.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(jar, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("META-INF/MANIFEST.MF", "Manifest-Version: 1.0\nCreated-By: cdcsync\n")
        for interface, implementations in sorted(services.items()):
            archive.writestr(f"META-INF/services/{interface}", "".join(f"{name}\n" for name in implementations))


def find_maven() -> str:
    """The ``mvn`` on PATH, 3.8 or newer."""
    mvn = shutil.which("mvn")
    fix = "install Apache Maven 3.8 or newer (e.g. the maven package) so the pinned jars can be resolved"
    if mvn is None:
        raise StackError("jvm", f"Maven not found on PATH; {fix}")
    version = parse_maven_version(_run_version([mvn, "-version"]))
    if version is None or version < MIN_MAVEN:
        found = "an unknown version" if version is None else f"Maven {version[0]}.{version[1]}"
        raise StackError("jvm", f"{mvn} is {found}, Maven {MIN_MAVEN[0]}.{MIN_MAVEN[1]}+ is needed; {fix}")
    return mvn


def run_maven(mvn: str, pom: Path, jvm_dir: Path, log_file: Path, timeout: float) -> None:
    """``mvn package`` of ``pom``, which copies its artifacts under ``jvm_dir``; its output goes to ``log_file``."""
    log_file.parent.mkdir(parents=True, exist_ok=True)
    argv = [mvn, "-B", "--no-transfer-progress", "-f", str(pom), f"-Dcdcsync.jvm.dir={jvm_dir}", "package"]
    logger.info("resolving %s with Maven (log: %s)", pom.name, log_file)
    with log_file.open("w", encoding="utf-8") as log:
        try:
            done = subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            raise StackError("jvm", f"Maven did not finish within {timeout:.0f}s", log_file) from None
    if done.returncode != 0:
        raise StackError("jvm", f"Maven failed with exit code {done.returncode}", log_file)
