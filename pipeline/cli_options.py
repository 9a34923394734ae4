"""The options every ``cdcsync connectors`` command shares: where Connect is, how to log in, TLS.

``@connect_options`` adds them (each shows its environment variable in ``--help``)
and hands the command one ``ConnectOptions`` value; ``ConnectOptions.client()``
resolves the target (option > environment > context > local stack) and opens a client.
"""

from __future__ import annotations

import functools
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import urllib3

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.contexts import ConnectOverrides, ConnectTarget, ContextsFile, contexts_path, resolve_target
from cdcsync.debezium.output import FORMATS
from cdcsync.pipeline.settings import StackSettings

_FILE = click.Path(dir_okay=False, path_type=Path)


@dataclass(frozen=True)
class ConnectOptions:
    overrides: ConnectOverrides
    config_file: Path | None
    request_timeout: float

    def contexts(self) -> ContextsFile:
        return ContextsFile.load(self.config_file or contexts_path(os.environ))

    def target(self) -> ConnectTarget:
        return resolve_target(self.overrides, self.contexts(), os.environ, lambda: StackSettings.from_env().connect_url)

    def client(self) -> ConnectClient:
        target = self.target()
        if target.tls.insecure:
            click.echo(f"warning: not verifying the TLS certificate of {target.url} (--insecure)", err=True)
            warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        return ConnectClient(
            target.url, auth=target.auth, tls=target.tls, origin=target.origin, timeout=self.request_timeout
        )


config_option = click.option(
    "--config",
    "config_file",
    type=_FILE,
    envvar="CDCSYNC_CONFIG",
    show_envvar=True,
    help="Contexts file. Default: $XDG_CONFIG_HOME/cdcsync/contexts.toml (~/.config/cdcsync/contexts.toml).",
)
_OPTIONS = (
    click.option(
        "--connect-url",
        envvar="CONNECT_URL",
        show_envvar=True,
        help="Kafka Connect REST URL. Default: the current context's, else the local stack's.",
    ),
    click.option(
        "--context",
        "context_name",
        envvar="CDCSYNC_CONTEXT",
        show_envvar=True,
        help="Use this context, not the current one.",
    ),
    click.option(
        "--username",
        envvar="CONNECT_USERNAME",
        show_envvar=True,
        help="Basic-auth user. The password only ever comes from CONNECT_PASSWORD (or the context's password-env).",
    ),
    click.option("--ca-cert", type=_FILE, envvar="CONNECT_CA_CERT", show_envvar=True, help="CA bundle to trust (PEM)."),
    click.option(
        "--client-cert", type=_FILE, envvar="CONNECT_CLIENT_CERT", show_envvar=True, help="Client certificate (PEM)."
    ),
    click.option(
        "--client-key",
        type=_FILE,
        envvar="CONNECT_CLIENT_KEY",
        show_envvar=True,
        help="Client certificate's key (PEM).",
    ),
    click.option(
        "--insecure",
        is_flag=True,
        envvar="CONNECT_INSECURE",
        show_envvar=True,
        help="Do not verify the server's TLS certificate.",
    ),
    click.option(
        "--request-timeout",
        type=click.FloatRange(min=0.1),
        default=10.0,
        envvar="CONNECT_REQUEST_TIMEOUT",
        show_envvar=True,
        show_default=True,
        help="Seconds to wait for each answer.",
    ),
    config_option,
)
_NAMES = (
    "connect_url",
    "context_name",
    "username",
    "ca_cert",
    "client_cert",
    "client_key",
    "insecure",
    "request_timeout",
    "config_file",
)


def connect_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the shared options; the command receives them as ``connect: ConnectOptions``."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _NAMES}
        source = click.get_current_context().get_parameter_source("connect_url")
        overrides = ConnectOverrides(
            url=given["connect_url"],
            url_origin="CONNECT_URL" if source is click.core.ParameterSource.ENVIRONMENT else "--connect-url",
            context=given["context_name"],
            username=given["username"],
            ca_cert=given["ca_cert"],
            client_cert=given["client_cert"],
            client_key=given["client_key"],
            insecure=given["insecure"],
        )
        options = ConnectOptions(overrides, given["config_file"], given["request_timeout"])
        return command(*args, connect=options, **kwargs)

    for option in reversed(_OPTIONS):
        wrapper = option(wrapper)
    return wrapper


def output_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "-o",
        "--output",
        "fmt",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="table for people; json or yaml (keys sorted, secrets masked) for scripts.",
    )(command)


def wait_options(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--wait`` and ``--timeout``: block until the connectors are ``what``."""

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        command = click.option(
            "--timeout", type=click.FloatRange(min=0), default=120.0, show_default=True, help="Seconds --wait waits."
        )(command)
        return click.option("--wait", is_flag=True, help=f"Block until {what}.")(command)

    return decorate


def bootstrap_servers_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--bootstrap-servers`` (KAFKA_BOOTSTRAP_SERVERS); ``kafka_bootstrap`` resolves it when used."""
    return click.option(
        "--bootstrap-servers",
        envvar="KAFKA_BOOTSTRAP_SERVERS",
        show_envvar=True,
        default=None,
        help=f"Kafka, {what}. Default: the local stack's.",
    )


def kafka_bootstrap(value: str | None) -> str:
    """The --bootstrap-servers value, else the local stack's Kafka."""
    return value or StackSettings.from_env().kafka_bootstrap
