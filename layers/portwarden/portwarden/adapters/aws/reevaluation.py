"""Policy re-evaluation requests on EventBridge (the API's ``PolicyReevaluation`` port on AWS).

A change of an account's active bundle puts one "Policy Re-evaluation Requested" event on the bus;
the Rematch state machine's rule starts an execution with it, which re-evaluates the account's tagged
images from their stored analyses and matches (``statemachine/README.md``). The API answers at once:
the re-evaluation of a large catalogue outlasts any request.
"""

from __future__ import annotations

import json
from typing import Any

from portwarden.adapters.aws.clients import LazyClient
from portwarden.adapters.aws.s3 import client_error_code
from portwarden.core.errors import StoreError

# The rule's pattern in template.yaml (RematchStateMachine, ReevaluationRequested) says the same.
REEVALUATION_SOURCE = "portwarden.policy"
REEVALUATION_REQUESTED = "Policy Re-evaluation Requested"


class EventBridgeReevaluationRequests:
    def __init__(
        self,
        bus: str = "default",
        client: Any | None = None,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        self.bus = bus
        self._client = LazyClient("events", client, region=region, endpoint_url=endpoint_url)

    def request(self, account: str, *, reason: str, bundle_id: str) -> None:
        entry = {
            "Source": REEVALUATION_SOURCE,
            "DetailType": REEVALUATION_REQUESTED,
            "Detail": json.dumps({"account": account, "reason": reason, "bundle_id": bundle_id}),
            "EventBusName": self.bus,
        }
        try:
            response = self._client.get().put_events(Entries=[entry])
        except Exception as exc:
            code = client_error_code(exc) or type(exc).__name__
            raise StoreError(f"cannot request the policy re-evaluation: {code}") from exc
        if response.get("FailedEntryCount"):
            (failed,) = response.get("Entries", [{}])
            raise StoreError(
                f"the event bus refused the policy re-evaluation request: {failed.get('ErrorCode', '?')}"
            )
