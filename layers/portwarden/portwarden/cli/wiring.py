"""The one place the CLI chooses concrete adapters (DESIGN §4 rule 3)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

# Adapters and core services are imported where they are used: every command, even `--help`, pays
# for module-level imports, and requests or pydantic models take longer to load than typer itself.
if TYPE_CHECKING:
    from rich.progress import TaskID

    from portwarden.adapters.http.registry import HttpRegistryClient
    from portwarden.cli.context import CliState
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.image.reference import ImageReference
    from portwarden.core.ports import RegistryClient
    from portwarden.core.services.acquire import ImageAccess


def registry_client_factory(settings: LocalSettings) -> HttpRegistryClient:
    """Portwarden's store, Docker's config, then ECR tokens from the AWS credentials chain.

    The ECR source only asks AWS (and imports boto3) when an ECR host is pulled from.
    """
    from portwarden.adapters.aws.ecr_auth import EcrCredentialProvider
    from portwarden.adapters.http.credentials import build_credential_resolver
    from portwarden.adapters.http.registry import HttpRegistryClient

    resolver = build_credential_resolver(
        settings.home, settings.docker_config_file, ecr=EcrCredentialProvider()
    )
    return HttpRegistryClient(
        resolver,
        insecure_registries=resolver.insecure_registries(),
        request_deadline=settings.registry_request_deadline,
    )


def registry_clients(settings: LocalSettings) -> Callable[[ImageReference], RegistryClient]:
    """The registry client factory of an image access: one client, made on first use."""
    client: HttpRegistryClient | None = None
    lock = threading.Lock()

    def factory(_ref: ImageReference) -> RegistryClient:
        nonlocal client
        with lock:
            if client is None:
                client = registry_client_factory(settings)
            return client

    return factory


@contextmanager
def image_access(cli: CliState, settings: LocalSettings | None = None) -> Iterator[ImageAccess]:
    from portwarden.cli.output import download_progress
    from portwarden.cli.settings import LocalSettings
    from portwarden.core.services.acquire import ImageAccess

    settings = settings or LocalSettings()
    lock = threading.Lock()
    factory = registry_clients(settings)

    with download_progress(not cli.quiet) as progress:
        tasks: dict[str, TaskID] = {}

        def on_progress(digest: str, count: int) -> None:
            if progress is None:
                return
            with lock:
                task = tasks.get(digest)
                if task is None:
                    task = progress.add_task(digest[7:19], total=None)
                    tasks[digest] = task
            progress.advance(task, count)

        yield ImageAccess(
            limits=settings.safety_limits(),
            work_dir=settings.work_dir,
            registry_client=factory,
            on_progress=on_progress,
        )
