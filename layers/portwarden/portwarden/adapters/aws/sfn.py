"""Starting analyses: one Step Functions execution of ``statemachine/analysis.asl.json`` per request.

Execution names make starts idempotent. Step Functions refuses a second execution with a name it has
seen (for 90 days), so a trigger that names its execution after what it analyzes — the ECR event's
image digest and tag — starts at most one execution however often the event is delivered. A start
that finds its name taken reports ``started=False`` with the existing execution's ARN instead of
failing. Triggers without a stable identity (an API request for a tag, whose digest is not known
until Resolve runs) leave the name to Step Functions; the Resolve phase's conditional claim on the
image's status then keeps the analysis itself single.
"""

from __future__ import annotations

import hashlib
import re
import threading
from typing import Any

from portwarden.core.errors import StoreError
from portwarden.core.image.digest import split_digest
from portwarden.core.ports import AnalysisStart
from portwarden.core.services.pipeline import AnalysisRequest

# Step Functions execution names: 1-80 characters from this set.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ALREADY_EXISTS = "ExecutionAlreadyExists"


def execution_name(image_digest: str, repo_tag: str | None) -> str:
    """A stable execution name for (digest, tag): the digest's hex prefix and a hash of the tag.

    The tag is part of the name so that the same digest pushed under a second tag still starts an
    execution, whose Resolve records the new tag and skips the analysis the digest already has.
    """
    _, hexdigest = split_digest(image_digest)
    tag_hash = hashlib.sha256((repo_tag or "").encode()).hexdigest()[:12]
    return f"{hexdigest[:64]}-{tag_hash}"


class StepFunctionsStarter:
    """The ``AnalysisStarter`` of AWS: starts executions of one state machine.

    ``AnalysisStart.execution_id`` is the execution's ARN. A repeated start while the first is still
    running is answered by Step Functions with the running execution itself, so it reads as started,
    with the same ARN.

    ``client`` is used as given (tests pass one); otherwise one is built on first use from
    ``session`` (or the default boto3 session) and kept for the life of the process.
    """

    def __init__(
        self,
        state_machine_arn: str,
        client: Any | None = None,
        *,
        session: Any | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self._client = client
        self._session = session
        self._endpoint_url = endpoint_url
        self._lock = threading.Lock()

    @property
    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3  # type: ignore[import-untyped]

                    session = self._session or boto3.session.Session()
                    self._client = session.client("stepfunctions", endpoint_url=self._endpoint_url)
        return self._client

    def start(self, request: AnalysisRequest, *, name: str | None = None) -> AnalysisStart:
        """Start an execution with ``request`` as its input (``name``: see the module docstring)."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        if name is not None and not _NAME_RE.match(name):
            raise ValueError(f"invalid execution name {name!r}")
        arguments: dict[str, Any] = {
            "stateMachineArn": self.state_machine_arn,
            "input": request.model_dump_json(),
        }
        if name is not None:
            arguments["name"] = name
        try:
            response = self.client.start_execution(**arguments)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == _ALREADY_EXISTS and name is not None:
                return AnalysisStart(execution_id=self._execution_arn(name), started=False)
            raise StoreError(f"cannot start an analysis ({code or 'ClientError'})") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot start an analysis ({type(exc).__name__})") from exc
        return AnalysisStart(execution_id=response["executionArn"], started=True)

    def _execution_arn(self, name: str) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<machine> → …:execution:<machine>:<name>
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"
