"""The options every ``cdcsync connectors`` command shares: where Connect is, how to log in, TLS.

``@connect_options`` adds them (each shows its environment variable in ``--help``)
and hands the command one ``ConnectOptions`` value; ``ConnectOptions.client()``
resolves the target and opens a client. Outside the local profile: option > environment
> context, else a ``ConfigError`` naming CONNECT_URL. In the local profile: option > the
local stack (CONNECT_URL, CDCSYNC_CONTEXT and the current context are ignored).

``command_targets`` resolves the other targets a command needs (``pipeline.targets``)
and prints the one ``target:`` line on stderr.
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
from click.core import ParameterSource

from cdcsync.debezium.connect_client import ConnectClient
from cdcsync.debezium.connect_errors import LOCAL_STACK
from cdcsync.debezium.contexts import ConnectOverrides, ConnectTarget, ContextsFile, contexts_path, resolve_target
from cdcsync.debezium.output import FORMATS
from cdcsync.errors import ConfigError
from cdcsync.pipeline.logs import say
from cdcsync.pipeline.settings import StackSettings
from cdcsync.pipeline.targets import PROFILE_ENV, Profile, Targets, missing_setting, redacted
from cdcsync.settings import choice_setting

_FILE = click.Path(dir_okay=False, path_type=Path)


def current_profile() -> Profile:
    """The profile the ``cdcsync`` group chose (``--local``, ``--profile``, CDCSYNC_PROFILE)."""
    context = click.get_current_context(silent=True)
    chosen = context.find_root().obj if context is not None else None
    if isinstance(chosen, Profile):
        return chosen
    return Profile(choice_setting(os.environ, PROFILE_ENV, Profile.ENV.value, tuple(p.value for p in Profile)))


def given(name: str) -> tuple[str, str | None]:
    """(where from, value) of option ``name`` when the user gave it: on the command line, or through
    its variable outside the local profile (the local profile ignores the target variables)."""
    context = click.get_current_context()
    source = context.get_parameter_source(name)
    parameter = next(p for p in context.command.params if p.name == name)
    value = context.params.get(name)
    if source is ParameterSource.COMMANDLINE:
        return parameter.opts[-1], value
    if source is ParameterSource.ENVIRONMENT and current_profile() is Profile.ENV:
        return str(getattr(parameter, "envvar", None) or parameter.opts[-1]), value
    return parameter.opts[-1], None


def say_target(text: str) -> None:
    """The one ``target:`` line of a command, on stderr (never a password)."""
    root = click.get_current_context().find_root()
    if not root.meta.get("cdcsync.target_said"):
        root.meta["cdcsync.target_said"] = True
        say(f"target: {text}")


def command_targets(
    keys: tuple[str, ...], options: dict[str, str] | None = None, connect: ConnectOptions | None = None
) -> Targets:
    """The targets of the current command's profile, with its ``options`` (variable -> option name) applied.

    Says which target (with ``connect``'s too) and raises a ``ConfigError`` naming every one of ``keys`` not set.
    """
    targets = Targets.for_profile(current_profile()).with_options(
        {key: given(name) for key, name in (options or {}).items()}
    )
    parts = [connect.describe()] if connect is not None else []
    if keys or not parts:
        described = targets.describe(keys)
        parts += [described] if described not in parts else []
    say_target("; ".join(parts))
    return targets.require(keys)


@dataclass(frozen=True)
class ConnectOptions:
    overrides: ConnectOverrides
    config_file: Path | None
    request_timeout: float
    local: StackSettings | None = None  # the local stack, in the local profile

    def contexts(self) -> ContextsFile:
        return ContextsFile.load(self.config_file or contexts_path(os.environ))

    def target(self) -> ConnectTarget:
        if self.local is not None:
            local = self.local
            contexts = self.contexts() if self.overrides.context else ContextsFile(Path(os.devnull))
            return resolve_target(self.overrides, contexts, os.environ, lambda: local.connect_url)

        def unset() -> str:
            raise missing_setting(["CONNECT_URL"])

        return resolve_target(self.overrides, self.contexts(), os.environ, unset)

    def describe(self) -> str:
        """Where Connect is, for the target line; with no URL at all, says so before the ConfigError."""
        try:
            target = self.target()
        except ConfigError:
            say_target("environment (CONNECT_URL not set)")
            raise
        if target.origin == LOCAL_STACK and self.local is not None:
            return Targets.local_stack(self.local).describe(())
        if target.origin == "CONNECT_URL":
            return f"environment (CONNECT_URL={redacted(target.url)})"
        if target.origin == "--connect-url":
            return f"--connect-url={redacted(target.url)}"
        return f"{target.origin} ({redacted(target.url)})"

    def client(self) -> ConnectClient:
        say_target(self.describe())
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
        help="Kafka Connect REST URL. Default: the current context's (the local stack's with --local).",
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
        values = {name: kwargs.pop(name) for name in _NAMES}
        url_origin, url = given("connect_url")
        _, context_name = given("context_name")
        overrides = ConnectOverrides(
            url=url,
            url_origin=url_origin,
            context=context_name,
            username=values["username"],
            ca_cert=values["ca_cert"],
            client_cert=values["client_cert"],
            client_key=values["client_key"],
            insecure=values["insecure"],
        )
        local = StackSettings.from_env() if current_profile() is Profile.LOCAL else None
        options = ConnectOptions(overrides, values["config_file"], values["request_timeout"], local)
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
        help=f"Kafka, {what}. Required outside the local profile (--local).",
    )
