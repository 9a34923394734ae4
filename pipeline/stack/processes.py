"""Detached processes of the local stack, tracked by pid files.

A part started here runs in its own session (so a Ctrl-C in the shell that ran
``stack up`` does not reach it), writes stdout and stderr to
``<home>/logs/<name>.log`` and is recorded in ``<home>/run/<name>.pid`` together
with the exact argv it was started with. It is stopped only while
``/proc/<pid>/cmdline`` still equals that argv: a recycled pid, or a process
someone else started on the same port, is never signalled.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cdcsync.pipeline.errors import StackError

logger = logging.getLogger(__name__)


def port_in_use(host: str, port: int) -> bool:
    """True if something already listens on (or holds) ``host:port``.

    Binds rather than connects, so a listener on 0.0.0.0 counts too;
    SO_REUSEADDR keeps sockets in TIME_WAIT from counting.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def port_accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connection to ``host:port`` succeeds now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.25) -> float:
    """Poll ``predicate`` until it is true; return the seconds it took.

    Raises ``TimeoutError`` naming ``what`` when ``timeout`` seconds pass.
    Exceptions from ``predicate`` propagate, so a predicate can fail fast
    (for example when the process it waits for has exited).
    """
    started = time.monotonic()
    deadline = started + timeout
    while True:
        if predicate():
            return time.monotonic() - started
        now = time.monotonic()
        if now >= deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(min(interval, deadline - now))


def cmdline_matches(recorded: Sequence[str], raw_cmdline: bytes) -> bool:
    """Whether ``/proc/<pid>/cmdline`` content is exactly the recorded argv.

    A zombie or a kernel thread has an empty cmdline and never matches.
    """
    if not raw_cmdline:
        return False
    actual = raw_cmdline.rstrip(b"\0").split(b"\0")
    return [os.fsdecode(arg) for arg in actual] == list(recorded)


def _read_cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


@dataclass(frozen=True)
class PidRecord:
    """What a pid file holds: the pid and the exact argv it was started with (never the environment)."""

    pid: int
    argv: tuple[str, ...]

    def dumps(self) -> str:
        return json.dumps({"pid": self.pid, "argv": list(self.argv)})

    @classmethod
    def loads(cls, text: str) -> PidRecord | None:
        """Parse a pid file; ``None`` for anything that is not one of ours."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return None
        if not isinstance(data, dict):
            return None
        pid, argv = data.get("pid"), data.get("argv")
        if not isinstance(pid, int) or pid <= 1 or not isinstance(argv, list) or not argv:
            return None
        if not all(isinstance(arg, str) for arg in argv):
            return None
        return cls(pid=pid, argv=tuple(argv))


@dataclass(frozen=True)
class ManagedProcess:
    """One detached process of the stack, known by its name under ``home``."""

    name: str
    home: Path

    @property
    def log_file(self) -> Path:
        return self.home / "logs" / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.home / "run" / f"{self.name}.pid"

    def record(self) -> PidRecord | None:
        try:
            return PidRecord.loads(self.pid_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None

    def running_pid(self) -> int | None:
        """The pid if the process we started is still alive, else ``None``."""
        record = self.record()
        if record is None or not cmdline_matches(record.argv, _read_cmdline(record.pid)):
            return None
        return record.pid

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start ``argv`` detached and record it; the log file is appended to, never truncated."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"\n=== cdcsync: starting {self.name} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=None if env is None else dict(env),
                start_new_session=True,
                close_fds=True,
            )
        tmp = self.pid_file.with_suffix(".pid.tmp")
        tmp.write_text(PidRecord(pid=proc.pid, argv=tuple(argv)).dumps(), encoding="utf-8")
        tmp.replace(self.pid_file)
        # Popen returns once exec has begun, a moment before the kernel shows the
        # new argv in /proc/<pid>/cmdline; callers must see the process as ours.
        wait_until(
            lambda: proc.poll() is not None or self.running_pid() is not None,
            5.0,
            f"{self.name} (pid {proc.pid}) to show its command line",
            interval=0.01,
        )
        logger.debug("started %s pid=%d log=%s", self.name, proc.pid, self.log_file)
        return proc.pid

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the process we started: SIGTERM, then SIGKILL after ``timeout``.

        Returns True if it was running. A pid file whose pid no longer runs
        our argv is stale: it is removed and nothing is signalled.
        """
        pid = self.running_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        # Our processes lead their own session and process group, so the whole
        # group (e.g. a shell wrapper's children) gets the signal.
        self._signal(pid, signal.SIGTERM)
        try:
            wait_until(lambda: self.running_pid() is None, timeout, f"{self.name} (pid {pid}) to exit")
        except TimeoutError:
            logger.warning("%s (pid %d) ignored SIGTERM for %.0fs, sending SIGKILL", self.name, pid, timeout)
            self._signal(pid, signal.SIGKILL)
            try:
                wait_until(lambda: self.running_pid() is None, 10.0, f"{self.name} (pid {pid}) to die")
            except TimeoutError:
                raise StackError(self.name, f"pid {pid} survived SIGKILL", self.log_file) from None
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _signal(pid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
