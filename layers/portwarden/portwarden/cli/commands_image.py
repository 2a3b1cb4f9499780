"""``portwarden image inspect`` and ``portwarden files``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from portwarden.cli.context import state
from portwarden.cli.output import (
    Column,
    OutputFormat,
    message,
    print_fields,
    print_json,
    print_table,
    stdout,
)
from portwarden.cli.wiring import image_access

# Core services load inside the commands: module-level imports are paid by every
# command, `--help` included.
if TYPE_CHECKING:
    from pydantic import BaseModel

    from portwarden.core.services.acquire import FileListing, ImageAccess, ImageInspection

image_app = typer.Typer(help="Look at an image's manifest, config and layers.", no_args_is_help=True)

SourceArg = Annotated[
    str,
    typer.Argument(
        metavar="SOURCE",
        help="registry:REF (or a bare REF), docker-archive:PATH, oci-dir:PATH or oci-archive:PATH",
    ),
]
PlatformOpt = Annotated[
    str | None, typer.Option("--platform", help="OS/ARCH[/VARIANT] to pick from a multi-arch index.")
]
FormatOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="Output format.")]


Result = TypeVar("Result", bound="BaseModel")


def _show(
    ctx: typer.Context,
    use_case: Callable[[str, ImageAccess, str | None], Result],
    source: str,
    platform: str | None,
    output: OutputFormat,
    table: Callable[[Result], None],
) -> None:
    with image_access(state(ctx)) as access:
        result = use_case(source, access, platform)
    if output == OutputFormat.JSON:
        print_json(result)
    else:
        table(result)


@image_app.command("inspect")
def inspect(
    ctx: typer.Context,
    source: SourceArg,
    platform: PlatformOpt = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Manifest and config digests, platform, layers and the image config (no layer is read)."""
    from portwarden.core.services.acquire import inspect_image

    _show(ctx, inspect_image, source, platform, output, _print_inspection)


def files(
    ctx: typer.Context,
    source: SourceArg,
    platform: PlatformOpt = None,
    output: FormatOpt = OutputFormat.TABLE,
) -> None:
    """Every file of the image's final filesystem, with mode, owner, size and sha256."""
    from portwarden.core.services.acquire import list_files

    _show(ctx, list_files, source, platform, output, _print_files)


def _print_inspection(result: ImageInspection) -> None:
    config = result.config
    print_fields(
        (
            ("Manifest", result.manifest_digest),
            ("Config", result.config_digest),
            ("Platform", result.platform),
            ("User", config.user),
            ("WorkingDir", config.working_dir),
            ("Entrypoint", " ".join(config.entrypoint) if config.entrypoint else None),
            ("Cmd", " ".join(config.cmd) if config.cmd else None),
            ("Ports", ", ".join(config.exposed_ports) or None),
        )
    )
    message("Layers", console=stdout)
    print_table(
        (
            Column("#", justify="right"),
            Column("Digest"),
            Column("Size", justify="right"),
            Column("Media type"),
        ),
        (
            (str(number), layer.digest, f"{layer.size:,}", layer.media_type)
            for number, layer in enumerate(result.layers, 1)
        ),
    )


FILE_COLUMNS = (
    Column("Mode"),
    Column("UID:GID", drop_rank=2),
    Column("Size", justify="right", drop_rank=1),
    Column("Type", drop_rank=3),
    Column("Path"),
)


def _print_files(result: FileListing) -> None:
    print_table(
        FILE_COLUMNS,
        (
            (
                entry.mode,
                f"{entry.uid}:{entry.gid}",
                f"{entry.size:,}",
                entry.type,
                f"{entry.path} -> {entry.link_target}" if entry.link_target else entry.path,
            )
            for entry in result.files
        ),
    )
    for warning in result.warnings:
        message(f"warning: {warning}")
