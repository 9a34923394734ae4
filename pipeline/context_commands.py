"""``cdcsync connectors context set|use|list|delete``: named Kafka Connect targets, as in kcctl.

The file (``debezium.contexts``) holds URLs, user names, certificate paths and
the *name* of the variable holding each password, never a password.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from cdcsync.debezium.contexts import DEFAULT_PASSWORD_ENV, ConnectContext, ContextsFile, contexts_path
from cdcsync.debezium.output import format_table, render
from cdcsync.pipeline.cli_options import config_option, output_option, say_target

_FILE = click.Path(dir_okay=False, path_type=Path)


def _load(config_file: Path | None) -> ContextsFile:
    path = config_file or contexts_path(os.environ)
    say_target(f"contexts file ({path})")
    return ContextsFile.load(path)


@click.group()
def context() -> None:
    """Named Kafka Connect targets. The current one is used when no --connect-url / CONNECT_URL is given."""


@context.command("set")
@config_option
@click.argument("name")
@click.option("--url", required=True, help="Kafka Connect REST URL, without credentials.")
@click.option("--username", help="Basic-auth user.")
@click.option(
    "--password-env",
    default=DEFAULT_PASSWORD_ENV,
    show_default=True,
    help="The environment variable holding the password (the password is never stored).",
)
@click.option("--ca-cert", type=_FILE, help="CA bundle to trust (PEM).")
@click.option("--client-cert", type=_FILE, help="Client certificate (PEM).")
@click.option("--client-key", type=_FILE, help="Client certificate's key (PEM).")
@click.option("--insecure", is_flag=True, help="Do not verify the server's TLS certificate.")
def context_set(
    *,
    config_file: Path | None,
    name: str,
    url: str,
    username: str | None,
    password_env: str,
    ca_cert: Path | None,
    client_cert: Path | None,
    client_key: Path | None,
    insecure: bool,
) -> None:
    """Create or replace context NAME. The first context becomes the current one."""
    contexts = _load(config_file)
    absolute = [p.expanduser().resolve() if p else None for p in (ca_cert, client_cert, client_key)]
    updated = contexts.with_context(
        ConnectContext(name, url, username, password_env, absolute[0], absolute[1], absolute[2], insecure)
    )
    updated.save()
    click.echo(f"context {name}: saved in {updated.path} (current: {updated.current})")


@context.command("use")
@config_option
@click.argument("name")
def context_use(config_file: Path | None, name: str) -> None:
    """Make NAME the current context."""
    updated = _load(config_file).using(name)
    updated.save()
    click.echo(f"current context: {name}")


@context.command("list")
@config_option
@output_option
def context_list(config_file: Path | None, fmt: str) -> None:
    """Every context; * marks the current one."""
    contexts = _load(config_file)
    if fmt != "table":
        document = {
            "current": contexts.current,
            "contexts": {name: c.to_toml() for name, c in contexts.contexts.items()},
        }
        click.echo(render(document, fmt))
        return
    if not contexts.contexts:
        click.echo(f"no contexts in {contexts.path} (cdcsync connectors context set NAME --url URL)")
        return
    rows = [
        ("*" if name == contexts.current else "", name, c.url, c.username or "-", c.password_env if c.username else "-")
        for name, c in sorted(contexts.contexts.items())
    ]
    click.echo(format_table(("CURRENT", "NAME", "URL", "USERNAME", "PASSWORD FROM"), rows))


@context.command("delete")
@config_option
@click.argument("name")
def context_delete(config_file: Path | None, name: str) -> None:
    """Remove context NAME (if it was current, no context is current afterwards)."""
    updated = _load(config_file).without(name)
    updated.save()
    click.echo(f"context {name}: deleted")
