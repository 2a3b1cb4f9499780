"""Starting analyses: one Step Functions execution of ``statemachine/analysis.asl.json`` per request.

One analysis per digest is the Resolve phase's claim (a conditional update of the image's status,
owned by the execution, with a deadline), not the execution name: Step Functions keeps a name for 90
days, so a name derived from the digest alone would refuse every later attempt (a re-push after a
failure). Names are unique per attempt: the digest and tag for the reader, plus the identity of the
delivery (the EventBridge event id, an SQS message id), so a delivery repeated by its transport
starts nothing twice (``started=False``), while a new push is a new attempt. Triggers without an
identity of their own (an API request) get a fresh random name.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.core.errors import StoreError
from portwarden.core.image.digest import split_digest
from portwarden.core.model.pipeline import AnalysisRequest
from portwarden.core.ports import AnalysisStart

# Step Functions execution names: 1-80 characters from this set.
_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ALREADY_EXISTS = "ExecutionAlreadyExists"
_NO_SUCH_EXECUTION = "ExecutionDoesNotExist"
# Step Functions' limits on StopExecution's error and cause.
_STOP_ERROR = "ImageDeleted"
_MAX_CAUSE = 32_768


def execution_name(image_digest: str, repo_tag: str | None, attempt: str) -> str:
    """The execution name of one attempt: the digest's hex prefix, a hash of the tag, and a hash of
    ``attempt`` (the delivery's identity), within Step Functions' 80 characters."""
    _, hexdigest = split_digest(image_digest)
    tag_hash = hashlib.sha256((repo_tag or "").encode()).hexdigest()[:8]
    attempt_hash = hashlib.sha256(attempt.encode()).hexdigest()[:20]
    return f"{hexdigest[:48]}-{tag_hash}-{attempt_hash}"


class StepFunctionsStarter:
    """The ``AnalysisStarter`` of AWS: starts executions of one state machine.

    ``AnalysisStart.execution_id`` is the execution's ARN. A repeated start while the first is still
    running is answered by Step Functions with the running execution itself, so it reads as started,
    with the same ARN.

    ``client`` is used as given (tests pass one); otherwise one is built on first use from
    ``session`` (or the default boto3 session) and kept for the life of the process. A starter opened
    for an ``account`` (the API's, per caller) starts every analysis for that account, whatever the
    request said.
    """

    def __init__(
        self,
        state_machine_arn: str,
        client: Any | None = None,
        *,
        session: Any | None = None,
        endpoint_url: str | None = None,
        account: str | None = None,
    ) -> None:
        self.state_machine_arn = state_machine_arn
        self._account = account
        self._client = LazyClient("stepfunctions", client, session=session, endpoint_url=endpoint_url)

    @property
    def client(self) -> Any:
        return self._client.get()

    def start(self, request: AnalysisRequest, *, name: str | None = None) -> AnalysisStart:
        """Start an execution with ``request`` as its input (``name``: see the module docstring)."""
        from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

        if name is not None and not _NAME_RE.match(name):
            raise ValueError(f"invalid execution name {name!r}")
        if self._account is not None:
            request = request.model_copy(update={"account": self._account})
        arguments: dict[str, Any] = {
            "stateMachineArn": self.state_machine_arn,
            "input": request.model_dump_json(),
        }
        # Without an identity of its own, a start is an attempt of its own: a fresh name.
        arguments["name"] = name if name is not None else f"attempt-{uuid.uuid4().hex}"
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

    def stop(self, execution_id: str, reason: str) -> bool:
        """Stop the execution ``execution_id`` (an image's claim owner) if it is one of this state
        machine's; False when it is not (a claim some other attempt took) or no longer exists.

        Stopping an execution that has already ended changes nothing. A task already running when
        the execution stops still finishes: the phases check the image's claim before they write.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        if not execution_id.startswith(self._execution_arn("")):
            return False
        try:
            self.client.stop_execution(
                executionArn=execution_id, error=_STOP_ERROR, cause=reason[:_MAX_CAUSE]
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == _NO_SUCH_EXECUTION:
                return False
            raise StoreError(f"cannot stop the analysis {execution_id} ({code or 'ClientError'})") from exc
        except BotoCoreError as exc:
            raise StoreError(f"cannot stop the analysis {execution_id} ({type(exc).__name__})") from exc
        return True

    def _execution_arn(self, name: str) -> str:
        # arn:aws:states:<region>:<account>:stateMachine:<machine> → …:execution:<machine>:<name>
        prefix, _, machine = self.state_machine_arn.rpartition(":stateMachine:")
        return f"{prefix}:execution:{machine}:{name}"
