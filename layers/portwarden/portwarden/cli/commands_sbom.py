"""``portwarden sbom``: analyze an image and print its SBOM."""

from __future__ import annotations

import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.commands_image import PlatformOpt, SourceArg
from portwarden.cli.context import state
from portwarden.cli.output import Column, message, print_table, stdout
from portwarden.cli.stored_sbom import cache_warning_lines, failure_lines, named_patterns, sbom_options
from portwarden.cli.wiring import image_access

# Analyzers and SBOM encoders load inside the command: module-level imports are paid by
# every command, `--help` included.
if TYPE_CHECKING:
    from portwarden.core.model.analysis import ImageAnalysis


class SbomFormat(StrEnum):
    TABLE = "table"
    JSON = "json"
    CYCLONEDX_JSON = "cyclonedx-json"
    SPDX_JSON = "spdx-json"


def sbom(
    ctx: typer.Context,
    source: SourceArg,
    platform: PlatformOpt = None,
    output: Annotated[SbomFormat, typer.Option("--output", "-o", help="Output format.")] = SbomFormat.TABLE,
    include_declared: Annotated[
        bool, typer.Option("--include-declared", help="Also report lock files (package-lock.json, …).")
    ] = False,
    secret: Annotated[
        list[str], typer.Option("--secret", help="Extra secret pattern NAME=REGEX (repeatable).")
    ] = [],  # noqa: B006 - typer needs a literal default
    content: Annotated[
        list[str], typer.Option("--content", help="Content search pattern NAME=REGEX (repeatable).")
    ] = [],  # noqa: B006
    retrieve: Annotated[
        list[str],
        typer.Option(
            "--retrieve",
            help="Also store this file in the analysis (repeatable; /etc/passwd is stored by default).",
        ),
    ] = [],  # noqa: B006
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Read every layer, ignore cached fragments.")
    ] = False,
) -> None:
    """Catalog an image's packages, files and secrets into an SBOM."""
    from portwarden.adapters.local.blobs import FilesystemBlobStore
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.services.analyze import analyze_image, sbom_document

    settings = LocalSettings()
    for values, option in ((secret, "--secret"), (content, "--content")):
        try:
            named_patterns(values)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint=option) from exc
    options = sbom_options(
        settings, include_declared=include_declared, secret=secret, content=content, retrieve=retrieve
    )
    blobs = None if no_cache else FilesystemBlobStore(settings.home / "cache")
    with image_access(state(ctx), settings) as access:
        if output == SbomFormat.TABLE:
            analysis = analyze_image(source, access, options=options, blobs=blobs, platform=platform)
        else:
            document = sbom_document(
                source, access, output.value, options=options, blobs=blobs, platform=platform
            )
    if output == SbomFormat.TABLE:
        warn_about_cache(analysis)
        print_package_table(analysis)
    else:
        if document.summary is not None:
            warn_about_cache(document.summary)
        # Bytes straight to stdout: a large document is never held whole as text.
        sys.stdout.flush()
        document.write(sys.stdout.buffer)
        sys.stdout.buffer.write(b"\n")
        sys.stdout.buffer.flush()
        if document.summary is None:  # a stored document: its analysis had no failed analyzer
            return
        analysis = document.summary
    for line in failure_lines(analysis):
        message(line)


PACKAGE_COLUMNS = (
    Column("Name"),
    Column("Version"),
    Column("Type", drop_rank=1),
    Column("Found by", drop_rank=2),
)


def warn_about_cache(analysis: ImageAnalysis) -> None:
    """Say when the layer cache was damaged (the affected layers were read again)."""
    for line in cache_warning_lines(analysis):
        message(line)


def print_package_table(analysis: ImageAnalysis) -> None:
    print_table(
        PACKAGE_COLUMNS,
        (
            (package.name, package.version, package.type.value, package.found_by)
            for package in analysis.packages
        ),
    )
    distro = analysis.distro
    if distro is not None:
        message(
            f"distro: {distro.pretty_name or distro.id} ({distro.id} {distro.version_id or ''})",
            console=stdout,
        )
    if analysis.secrets:
        message(
            f"{len(analysis.secrets)} secret(s) found: "
            + ", ".join(f"{s.path}:{s.line} {s.name}" for s in analysis.secrets),
            console=stdout,
        )
