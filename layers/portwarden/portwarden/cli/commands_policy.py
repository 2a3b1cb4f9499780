"""``portwarden policy add|validate|list|get|activate|gates``: Anchore-compatible policy bundles kept in
the local store under PORTWARDEN_HOME."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from portwarden.cli.context import EXIT_ERROR
from portwarden.cli.output import Column, OutputFormat, message, print_table, stdout
from portwarden.cli.triage_options import ConfigOpt, VexOpt
from portwarden.core.errors import NotFoundError, PolicyBundleError

# The store, policy models and gates load inside the commands: module-level imports are
# paid by every command, `--help` included.
if TYPE_CHECKING:
    from portwarden.core.model.policy import PolicyBundle
    from portwarden.core.ports import PolicyStore

policy_app = typer.Typer(help="Policy bundles (Anchore's format, schema 1_0).", no_args_is_help=True)

BundleFileArg = Annotated[
    Path, typer.Argument(help="Policy bundle JSON file.", exists=True, dir_okay=False, readable=True)
]
OutputOpt = Annotated[OutputFormat, typer.Option("--output", "-o", help="table or json.")]
# The trigger id names the vulnerability or package a result is about: it is never dropped.
EVALUATION_COLUMNS = (
    Column("Gate"),
    Column("Trigger"),
    Column("Trigger id"),
    Column("Action"),
    Column("Allowlisted", drop_rank=1),
    Column("Check output"),
)


@contextmanager
def _policies() -> Iterator[PolicyStore]:
    from portwarden.adapters.local.sqlite import LocalStore
    from portwarden.cli.settings import LocalSettings

    with LocalStore(LocalSettings().home) as store:
        yield store.policies


def read_bundle_file(file: Path) -> bytes:
    """The file's bytes, refused unread when it is larger than any bundle may be."""
    from portwarden.core.policy.bundle import MAX_BUNDLE_BYTES

    try:
        with file.open("rb") as handle:
            # One byte past the limit tells "too large" apart; a growing file or a pipe is bounded too.
            data = handle.read(MAX_BUNDLE_BYTES + 1)
    except OSError as exc:
        raise PolicyBundleError([f"cannot read {file}: {exc.strerror or exc}"]) from exc
    if len(data) > MAX_BUNDLE_BYTES:
        size = file.stat().st_size if file.is_file() else len(data)
        raise PolicyBundleError([f"the bundle is {size:,} bytes; at most {MAX_BUNDLE_BYTES:,} are accepted"])
    return data


def _load(file: Path) -> PolicyBundle:
    """The validated bundle; otherwise every problem on its own line and exit code 2.

    ``validate`` and ``add`` both come here: what one accepts, the other stores."""
    from portwarden.core.services.evaluate import load_bundle_bytes

    try:
        return load_bundle_bytes(read_bundle_file(file))
    except PolicyBundleError as exc:
        count = len(exc.problems)
        message(f"error: {file}: {count} problem{'s' if count != 1 else ''}")
        for problem in exc.problems:
            message(f"  - {problem}")
        # typer.Exit would be turned into a return value by the non-standalone entry point.
        sys.exit(EXIT_ERROR)


def _write_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    sys.stdout.flush()


@policy_app.command("add")
def add(
    file: BundleFileArg,
    activate: Annotated[bool, typer.Option("--activate", help="Make it the active bundle.")] = False,
) -> None:
    """Validate a bundle and store it (a bundle with the same id is replaced)."""
    from portwarden.core.services.evaluate import store_bundle

    bundle = _load(file)
    with _policies() as policies:
        stored = store_bundle(policies, bundle, datetime.now(UTC), activate=activate)
    message(f"added {stored.bundle_id}" + (" (active)" if stored.active else ""), console=stdout)


@policy_app.command("validate")
def validate(file: BundleFileArg) -> None:
    """Check a bundle without storing it: every problem is listed (exit code 2 when there are any)."""
    bundle = _load(file)
    message(f"{bundle.id}: valid", console=stdout)


@policy_app.command("list")
def list_bundles(output: OutputOpt = OutputFormat.TABLE) -> None:
    """Stored bundles; the active one is used when no bundle is named."""
    with _policies() as policies:
        bundles = policies.list_bundles()
    if output == OutputFormat.JSON:
        _write_json([b.model_dump(mode="json", exclude={"document"}) for b in bundles])
        return
    print_table(
        (Column("Policy ID"), Column("Name"), Column("Active"), Column("Updated", drop_rank=1)),
        (
            (
                bundle.bundle_id,
                bundle.name or "-",
                "yes" if bundle.active else "no",
                bundle.updated_at.isoformat(timespec="seconds"),
            )
            for bundle in bundles
        ),
    )


@policy_app.command("get")
def get(
    bundle_id: Annotated[str, typer.Argument(help="Bundle id.")],
    detail: Annotated[
        bool, typer.Option("--detail", help="The stored record (id, active, timestamps) around the bundle.")
    ] = False,
) -> None:
    """Print a stored bundle as JSON."""
    with _policies() as policies:
        stored = policies.get_bundle(bundle_id)
    if stored is None:
        raise NotFoundError(f"no policy bundle {bundle_id}")
    _write_json(stored.model_dump(mode="json") if detail else stored.document)


@policy_app.command("activate")
def activate(bundle_id: Annotated[str, typer.Argument(help="Bundle id.")]) -> None:
    """Make a stored bundle the active one (the previous one is deactivated)."""
    with _policies() as policies:
        policies.activate(bundle_id)
    message(f"activated {bundle_id}", console=stdout)


@policy_app.command("gates")
def gates(output: OutputOpt = OutputFormat.TABLE) -> None:
    """The gates, triggers and parameters bundles may use."""
    from portwarden.core.policy.gates import GATES

    rows: list[dict[str, Any]] = [
        {
            "gate": gate.name,
            "trigger": trigger.name,
            "params": [
                {"name": name, "required": field.is_required()}
                for name, field in trigger.params.model_fields.items()
            ],
            "description": trigger.description,
        }
        for gate in GATES
        for trigger in gate.triggers
    ]
    if output == OutputFormat.JSON:
        _write_json(rows)
        return
    print_table(
        (Column("Gate"), Column("Trigger"), Column("Parameters (* required)"), Column("Description")),
        (
            (
                row["gate"],
                row["trigger"],
                ", ".join(str(p["name"]) + ("*" if p["required"] else "") for p in row["params"]) or "-",
                row["description"],
            )
            for row in rows
        ),
    )


@policy_app.command("eval")
def eval_image(
    ctx: typer.Context,
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="The image, as for `portwarden scan`.")],
    tag: Annotated[
        str | None, typer.Option("--tag", help="Repo tag the mappings select on (registry/repo:tag).")
    ] = None,
    bundle: Annotated[
        str,
        typer.Option(
            "--bundle", help="'active' (the active bundle, the default), 'default', or a bundle FILE."
        ),
    ] = "active",
    platform: Annotated[str | None, typer.Option("--platform", help="OS/ARCH[/VARIANT].")] = None,
    output: OutputOpt = OutputFormat.TABLE,
    vex: VexOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Analyze an image, match its vulnerabilities, apply VEX and ignore rules, and evaluate a bundle
    (exit 1 on stop)."""
    from portwarden.cli.commands_scan import run_scan
    from portwarden.cli.triage_options import print_warnings, triage_inputs

    triage = triage_inputs(vex, config)
    result = run_scan(ctx, source, platform=platform, policy=bundle, tag=tag, no_cache=False, triage=triage)
    print_warnings(result.analysis, result.triage)
    evaluation = result.evaluation
    if evaluation is None:  # pragma: no cover - run_scan evaluates whenever a bundle is named
        raise PolicyBundleError(["no bundle was evaluated"])
    if output == OutputFormat.JSON:
        _write_json({"image_digest": evaluation.image_digest, **evaluation.report()})
    else:
        print_table(
            EVALUATION_COLUMNS,
            (
                (
                    row.gate,
                    row.trigger,
                    row.trigger_id,
                    row.gate_action.value,
                    "yes" if row.allowlisted else "",
                    row.check_output,
                )
                for row in evaluation.results
            ),
        )
        message(
            f"{evaluation.bundle_id}: {evaluation.final_action.value} ({evaluation.status.value}) "
            f"— {evaluation.final_action_reason.value}",
            console=stdout,
        )
    if evaluation.stopped:
        sys.exit(1)
