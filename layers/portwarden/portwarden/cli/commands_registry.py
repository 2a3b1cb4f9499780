"""``portwarden registry add|list|delete``: credentials kept under PORTWARDEN_HOME, never printed."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.output import Column, OutputFormat, message, print_table, stdout
from portwarden.core.errors import ConfigurationError, NotFoundError

# The credential store (which brings requests) loads inside the commands:
# module-level imports are paid by every command, `--help` included.
if TYPE_CHECKING:
    from portwarden.adapters.http.credentials import PortwardenCredentialStore

registry_app = typer.Typer(
    help="Registry credentials and insecure (plain HTTP) registries.", no_args_is_help=True
)


def _store() -> PortwardenCredentialStore:
    from portwarden.adapters.http.credentials import PortwardenCredentialStore
    from portwarden.cli.settings import LocalSettings

    return PortwardenCredentialStore(LocalSettings().home)


@registry_app.command("add")
def add(
    host: Annotated[
        str,
        typer.Argument(
            help="Registry host, with port if any (no scheme, no path): ghcr.io, 127.0.0.1:5000, [::1]:5000"
        ),
    ],
    username: Annotated[str | None, typer.Option("--username", "-u", help="User name.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password (or token) from standard input.")
    ] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="Speak plain HTTP to this registry.")] = False,
) -> None:
    """Store credentials for a registry (file mode 0600; the password is never shown again)."""
    from portwarden.core.image.reference import parse_registry_host

    parse_registry_host(host)  # before any password is asked for
    password = ""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise ConfigurationError("--password-stdin was given but standard input held no password")
    elif username:
        password = typer.prompt("Password", hide_input=True)
    entry = _store().add(host, username or "", password, insecure=insecure)
    message(f"added {entry.host}" + (" (insecure)" if entry.insecure else ""), console=stdout)


@registry_app.command("list")
def list_registries(
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.TABLE,
) -> None:
    """Registries with stored settings (host, user name, insecure) — no secrets."""
    entries = _store().list()
    if output == OutputFormat.JSON:
        import json

        sys.stdout.write(json.dumps([e.model_dump() for e in entries], indent=2) + "\n")
        return
    print_table(
        (Column("Host"), Column("Username"), Column("Insecure")),
        ((entry.host, entry.username or "-", "yes" if entry.insecure else "no") for entry in entries),
    )


@registry_app.command("delete")
def delete(host: Annotated[str, typer.Argument(help="Registry host to forget.")]) -> None:
    """Forget a registry's stored credentials."""
    if not _store().delete(host):
        raise NotFoundError(f"no stored registry {host}")
    message(f"deleted {host}", console=stdout)
