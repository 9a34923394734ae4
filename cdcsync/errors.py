"""The base exceptions every layer raises: a failure the user can act on, with its exit code.

``cdcsync.pipeline.cli`` turns them into one line and an exit code, in one place;
``cdcsync.pipeline.errors`` holds the table of exit codes.
"""

from __future__ import annotations


class CdcsyncError(Exception):
    """Base class: a failure the user can act on, with a documented exit code."""

    exit_code = 1


class ConfigError(CdcsyncError):
    """A setting is missing or invalid. The message names the key and the fix."""

    exit_code = 2

    def __init__(self, key: str, problem: str, fix: str) -> None:
        super().__init__(f"{key}: {problem}. Fix: {fix}")
        self.key = key
