"""Which Kafka Connect a command talks to: options, environment, named contexts (as kcctl has them).

The contexts file is ``$CDCSYNC_CONFIG``, else ``$XDG_CONFIG_HOME/cdcsync/contexts.toml``,
else ``~/.config/cdcsync/contexts.toml``::

    current-context = "prod"

    [contexts.prod]
    url = "https://connect.internal:8083"
    username = "ops"
    password-env = "PROD_CONNECT_PASSWORD"  # names the variable; no password is ever stored
    ca-cert = "/etc/ssl/connect-ca.pem"
    client-cert = "/etc/ssl/ops.pem"
    client-key = "/etc/ssl/ops-key.pem"
    insecure = false

Precedence, per setting: command-line option > environment variable > the current
context (or ``--context``) > the caller's fallback (the local stack's URL in the local
profile; outside it, an error naming CONNECT_URL). A context's credentials and TLS
settings go only with that context's URL, so they never reach another server.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from cdcsync.debezium.connect_client import BasicAuth, TlsOptions
from cdcsync.debezium.connect_errors import LOCAL_STACK
from cdcsync.errors import ConfigError

DEFAULT_PASSWORD_ENV = "CONNECT_PASSWORD"  # noqa: S105 - the name of a variable, not a password
_CONTEXT_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYS = ("url", "username", "password-env", "ca-cert", "client-cert", "client-key", "insecure")


@dataclass(frozen=True)
class ConnectContext:
    name: str
    url: str
    username: str | None = None
    password_env: str = DEFAULT_PASSWORD_ENV
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    insecure: bool = False

    def __post_init__(self) -> None:
        where = f"context {self.name!r}"
        if _CONTEXT_NAME.fullmatch(self.name) is None:
            raise ConfigError(where, "is not a valid name", "use letters, digits, '-' and '_'")
        check_url(self.url, where)
        if _ENV_NAME.fullmatch(self.password_env) is None:
            raise ConfigError(f"{where} password-env", f"{self.password_env!r} is not a variable name", "e.g. X_PASS")

    def to_toml(self) -> dict[str, str | bool]:
        values: dict[str, str | bool | Path | None] = {
            "url": self.url,
            "username": self.username,
            "password-env": self.password_env,
            "ca-cert": self.ca_cert,
            "client-cert": self.client_cert,
            "client-key": self.client_key,
            "insecure": self.insecure or None,
        }
        return {k: v if isinstance(v, bool) else str(v) for k, v in values.items() if v is not None}

    @classmethod
    def from_toml(cls, name: str, table: Mapping[str, Any], where: str) -> ConnectContext:
        unknown = sorted(set(table) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: contexts.{name}.{unknown[0]}", "unknown key", f"use {', '.join(_KEYS)}")
        for key, value in table.items():
            if not isinstance(value, bool if key == "insecure" else str):
                raise ConfigError(f"{where}: contexts.{name}.{key}", f"{value!r} has the wrong type", "fix the value")
        if "url" not in table:
            raise ConfigError(f"{where}: contexts.{name}", "has no url", "cdcsync connectors context set NAME --url")

        def path(key: str) -> Path | None:
            return Path(table[key]) if key in table else None

        return cls(
            name=name,
            url=table["url"],
            username=table.get("username"),
            password_env=table.get("password-env", DEFAULT_PASSWORD_ENV),
            ca_cert=path("ca-cert"),
            client_cert=path("client-cert"),
            client_key=path("client-key"),
            insecure=table.get("insecure", False),
        )


@dataclass(frozen=True)
class ContextsFile:
    """The file's content; ``with_context``/``using``/``without`` return changed copies, ``save`` writes."""

    path: Path
    current: str | None = None
    contexts: Mapping[str, ConnectContext] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "contexts", MappingProxyType(dict(self.contexts)))

    @classmethod
    def load(cls, path: Path) -> ContextsFile:
        """An absent file is an empty one."""
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return cls(path)
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(str(path), f"cannot be read ({exc})", "fix or remove the file") from None
        tables = document.get("contexts") or {}
        if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
            raise ConfigError(f"{path}: contexts", "is not a table of tables", "write [contexts.NAME] sections")
        current = document.get("current-context")
        contexts = {name: ConnectContext.from_toml(name, table, str(path)) for name, table in tables.items()}
        if current is not None and current not in contexts:
            raise ConfigError(
                f"{path}: current-context", f"{current!r} is not defined", "cdcsync connectors context use"
            )
        return cls(path, current, contexts)

    def get(self, name: str) -> ConnectContext:
        if name not in self.contexts:
            known = ", ".join(sorted(self.contexts)) or "none"
            raise ConfigError(f"context {name!r}", f"is not in {self.path} (known: {known})", "context set NAME --url")
        return self.contexts[name]

    def with_context(self, context: ConnectContext) -> ContextsFile:
        """Add or replace ``context``; the first one becomes current."""
        return replace(self, current=self.current or context.name, contexts={**self.contexts, context.name: context})

    def using(self, name: str) -> ContextsFile:
        return replace(self, current=self.get(name).name)

    def without(self, name: str) -> ContextsFile:
        self.get(name)
        contexts = {k: v for k, v in self.contexts.items() if k != name}
        return replace(self, current=None if self.current == name else self.current, contexts=contexts)

    def render(self) -> str:
        """The file's TOML text. Pure."""
        lines = ["# cdcsync connectors contexts. No password is stored: password-env names its variable.", ""]
        if self.current is not None:
            lines += [f"current-context = {_toml_string(self.current)}", ""]
        for name in sorted(self.contexts):
            lines.append(f"[contexts.{name}]")
            for key, value in self.contexts[name].to_toml().items():
                lines.append(
                    f"{key} = {'true' if value is True else 'false' if value is False else _toml_string(value)}"
                )
            lines.append("")
        return "\n".join(lines)

    def save(self) -> None:
        """Replace the file atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(self.render())
        os.replace(temporary, self.path)


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, except that TOML forbids a raw DEL.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def contexts_path(env: Mapping[str, str]) -> Path:
    if env.get("CDCSYNC_CONFIG"):
        return Path(env["CDCSYNC_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "cdcsync" / "contexts.toml"


def check_url(url: str, where: str) -> str:
    """``url`` if it is an http(s) URL without credentials in it."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(where, f"{url!r} is not an http(s) URL", "e.g. http://127.0.0.1:8083")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            where, "holds credentials in the URL", "drop them; use --username and the password in CONNECT_PASSWORD"
        )
    return url


@dataclass(frozen=True)
class ConnectOverrides:
    """What the command line and the environment say (click has merged them); None where silent."""

    url: str | None = None
    url_origin: str = "--connect-url"
    context: str | None = None
    username: str | None = None
    ca_cert: Path | None = None
    client_cert: Path | None = None
    client_key: Path | None = None
    insecure: bool = False


@dataclass(frozen=True)
class ConnectTarget:
    url: str
    origin: str  # where the URL came from, for messages
    auth: BasicAuth | None = None
    tls: TlsOptions = field(default_factory=TlsOptions)


def resolve_target(
    overrides: ConnectOverrides, contexts: ContextsFile, env: Mapping[str, str], local_url: Callable[[], str]
) -> ConnectTarget:
    """The target by precedence: option > environment > context > ``local_url()``. Pure but for ``local_url``,
    which may raise (outside the local profile there is nothing to fall back to)."""
    name = overrides.context or contexts.current
    context = contexts.get(name) if name is not None else None
    if overrides.url is not None:
        url, origin, context = check_url(overrides.url, overrides.url_origin), overrides.url_origin, None
    elif context is not None:
        url, origin = context.url, f"context {context.name!r}"
    else:
        url, origin = local_url(), LOCAL_STACK
    username = overrides.username or (context.username if context else None)
    password_env = context.password_env if context else DEFAULT_PASSWORD_ENV
    auth = None
    if username:
        password = env.get(password_env)
        if not password:
            raise ConfigError(
                password_env, f"not set, but user {username!r} needs a password", f"export {password_env}"
            )
        auth = BasicAuth(username, password)
    tls = TlsOptions(
        ca_cert=overrides.ca_cert or (context.ca_cert if context else None),
        client_cert=overrides.client_cert or (context.client_cert if context else None),
        client_key=overrides.client_key or (context.client_key if context else None),
        insecure=overrides.insecure or bool(context and context.insecure),
    )
    return ConnectTarget(url=url, origin=origin, auth=auth, tls=tls)
