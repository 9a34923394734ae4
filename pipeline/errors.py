"""Errors that end a command, each carrying the exit code that the CLI maps it to.

The CLI turns these into a one-line message and an exit code in one place
(``pipeline.cli.main``); library code raises them and never calls ``sys.exit``.
"""

from __future__ import annotations

from pathlib import Path


class CdcsyncError(Exception):
    """Base class: a failure the user can act on, with a documented exit code."""

    exit_code = 1


class ConfigError(CdcsyncError):
    """A setting is missing or invalid. The message names the key and the fix."""

    exit_code = 2

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{key}: {problem}. Fix: {fix}")
        self.key = key


class StackError(CdcsyncError):
    """A part of the local stack failed to start or stop."""

    exit_code = 3

    def __init__(self, part: str, reason: str, log_file: Path | None = None) -> None:
        where = f" (log: {log_file})" if log_file is not None else ""
        super().__init__(f"{part}: {reason}{where}")
        self.part = part
        self.reason = reason
        self.log_file = log_file


class ConnectError(CdcsyncError):
    """The Kafka Connect REST API refused a request or could not be reached."""

    exit_code = 4


class VerifyMismatch(CdcsyncError):
    """The calendar differs from what the rules derive from the sources."""

    exit_code = 1
