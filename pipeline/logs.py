"""Logging for every command and the sink daemon: plain text (default) or JSON lines, never a secret.

``cdcsync --log-format json`` (``CDCSYNC_LOG_FORMAT``) writes one JSON object per line:
``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and, for an error with a
traceback, ``exception``. Both formats pass every line through ``Redactor``: the values
of the environment's secrets (variables named like a password, secret or token, and
the password inside any URL variable) and any ``user:password@`` in a URL become ``***``.

``say`` writes the lines a command owes stderr besides its logs (the ``target:`` line, the
``error:`` line): as they are in text, as JSON records in json, so that stderr stays JSON lines.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime

import psycopg
from psycopg.conninfo import conninfo_to_dict

LOG_FORMATS = ("text", "json")
MASK = "***"
_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|CREDENTIAL", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)(?P<password>[^@\s/]+)(?P<tail>@)", re.IGNORECASE)
_MIN_SECRET = 4  # shorter values would mask ordinary words


def secrets_in(env: Mapping[str, str]) -> frozenset[str]:
    """Every secret value the environment holds: secret-named variables, and passwords inside URLs."""
    found = set()
    for name, value in env.items():
        if _SECRET_NAME.search(name):
            found.add(value)
        elif "://" in value or "password=" in value:
            try:
                found.add(str(conninfo_to_dict(value).get("password") or ""))
            except psycopg.ProgrammingError:  # not a libpq string (http, kafka): the URL pattern still masks it
                continue
    return frozenset(s for s in found if len(s) >= _MIN_SECRET)


class Redactor:
    def __init__(self, secrets: frozenset[str]) -> None:
        # Longest first, so a secret that contains another is masked whole.
        self._secrets = sorted(secrets, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(rf"\g<head>{MASK}\g<tail>", text)
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        return text


class TextFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        return self._redact(super().format(record))


class JsonFormatter(logging.Formatter):
    def __init__(self, redact: Redactor) -> None:
        super().__init__()
        self._redact = redact

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": self._redact(record.getMessage()),
        }
        if record.exc_info:
            document["exception"] = self._redact(self.formatException(record.exc_info))
        return json.dumps(document, ensure_ascii=False)


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record comes (a command run in-process may swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


_json_lines = False  # set by configure_logging: the process logs JSON lines


def say(line: str, level: int = logging.INFO) -> None:
    """One line for stderr (``target: ...``, ``error: ...``): as it is, or a JSON record in json format."""
    if _json_lines:
        logging.getLogger("cdcsync").log(level, line)
    else:
        sys.stderr.write(line + "\n")


QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2")


def configure_logging(log_format: str, verbose: bool, env: Mapping[str, str]) -> Redactor:
    """cdcsync's one handler on the root logger (replacing its earlier one); returns the redactor for
    the output that is not logged (the error line)."""
    redact = Redactor(secrets_in(env))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, StderrHandler)]:
        root.removeHandler(old)
    handler = StderrHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(redact) if log_format == "json" else TextFormatter(redact))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # The schema registry client logs every HTTP request at INFO; its errors reach us as exceptions.
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.WARNING)
    global _json_lines  # noqa: PLW0603 - one process-wide choice, made once by the CLI group
    _json_lines = log_format == "json"
    return redact
