"""``portwarden image list`` and ``portwarden image get``: the images recorded in the local store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from portwarden.cli.commands_image import image_app
from portwarden.cli.output import Column, OutputFormat, message, print_fields, print_json, print_table, stdout
from portwarden.core.errors import NotFoundError

# The store and its models load inside the commands: module-level imports are paid by
# every command, `--help` included.
if TYPE_CHECKING:
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.core.model.records import ImageRecord

_DIGEST_PREFIX = "sha256:"
# Enough to list every image a local store realistically holds when resolving a short digest.
_LISTING_LIMIT = 100_000


@contextmanager
def _local_store() -> Iterator[LocalStore]:
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.cli.settings import LocalSettings

    store = LocalStore(LocalSettings().home)
    try:
        yield store
    finally:
        store.close()


def _resolve(store: LocalStore, digest: str) -> ImageRecord:
    """The image by full digest, by its hex part, or by a unique prefix of either (as ``list`` shows)."""
    wanted = digest.strip()
    for candidate in (wanted, _DIGEST_PREFIX + wanted):
        found = store.catalog.get_image(candidate)
        if found is not None:
            return found
    if wanted:
        full_prefix = wanted if wanted.startswith(_DIGEST_PREFIX) else _DIGEST_PREFIX + wanted
        matches = [
            image
            for image in store.catalog.list_images(limit=_LISTING_LIMIT)
            if image.image_digest.startswith(full_prefix)
        ]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NotFoundError(
                f"{digest!r} matches {len(matches)} images in the local store; give more of the digest"
            )
    raise NotFoundError(f"no image {digest} in the local store ({store.home}); see `portwarden image list`")


FormatOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="Output format.")]
IMAGE_COLUMNS = (
    Column("Digest"),
    Column("Tags"),
    Column("Status"),
    Column("Distro", drop_rank=2),
    Column("Packages", justify="right", drop_rank=3),
    Column("Created", drop_rank=1),
)


@image_app.command("list")
def list_images(output: FormatOpt = OutputFormat.TABLE) -> None:
    """Images recorded in the local store, newest first."""
    with _local_store() as store:
        images = store.catalog.list_images(limit=_LISTING_LIMIT)
    if output == OutputFormat.JSON:
        from portwarden.cli.listings import ImageListing

        print_json(ImageListing(images=tuple(images)))
        return
    if not images:
        message("No images in the local store.", console=stdout)
        return
    print_table(
        IMAGE_COLUMNS,
        (
            (
                _short(image.image_digest),
                ", ".join(image.repo_tags) or "-",
                image.analysis_status.value,
                image.distro or "-",
                str(image.package_count),
                image.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            )
            for image in images
        ),
    )


@image_app.command("get")
def get_image(
    digest: Annotated[
        str, typer.Argument(metavar="DIGEST", help="Manifest digest (sha256:…), or a unique prefix of it.")
    ],
    output: FormatOpt = OutputFormat.JSON,
) -> None:
    """One image recorded in the local store (exit 2 when it is not there)."""
    with _local_store() as store:
        image = _resolve(store, digest)
    if output == OutputFormat.JSON:
        print_json(image)
        return
    print_fields(
        (
            ("Digest", image.image_digest),
            ("Image ID", image.image_id),
            ("Status", image.analysis_status.value),
            ("Tags", ", ".join(image.repo_tags) or None),
            ("Source", image.source),
            ("Platform", image.platform),
            ("Distro", image.distro),
            ("Packages", str(image.package_count)),
            ("Created", image.created_at.isoformat()),
            ("Analyzed", image.analyzed_at.isoformat() if image.analyzed_at else None),
            ("Last error", image.last_error),
        )
    )


def _short(digest: str) -> str:
    algorithm, _, hex_part = digest.partition(":")
    return f"{algorithm}:{hex_part[:12]}" if hex_part else digest
