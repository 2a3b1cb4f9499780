"""Webhook delivery: Anchore's envelope POSTed as JSON to the endpoint configured for the type.

The endpoint is ``webhooks.<type>`` or else ``webhooks.general``; its URL may hold ``<userId>`` and
``<notification_type>``. Basic auth when a username is set; TLS verified unless ``ssl_verify`` is false.
With a ``secret`` the body is signed: ``X-Portwarden-Signature-256: sha256=<HMAC-SHA256(secret, body)>``
(a receiver recomputes it over the raw body it got). A 2xx is delivered; 408, 429 and 5xx (and
connection failures) are worth retrying; any other status is a refusal that retrying cannot change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from urllib.parse import urlsplit

import requests

from portwarden.core.errors import DeliveryError
from portwarden.core.watch.config import WebhookSettings
from portwarden.core.watch.notifications import Notification

SIGNATURE_HEADER = "X-Portwarden-Signature-256"
NOTIFICATION_ID_HEADER = "X-Portwarden-Notification-Id"
ATTEMPT_HEADER = "X-Portwarden-Delivery-Attempt"


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retryable(status: int) -> bool:
    return status in (408, 425, 429) or status >= 500


class WebhookChannel:
    name = "webhook"

    def __init__(
        self, settings: WebhookSettings, *, timeout: float = 10.0, session: requests.Session | None = None
    ) -> None:
        self._settings = settings
        self._timeout = timeout
        self._session = session or requests.Session()

    def target_for(self, notification: Notification) -> str | None:
        endpoint = self._settings.endpoint_for(notification.notification_type.value)
        if endpoint is None:
            return None
        return endpoint.render(notification.account, notification.notification_type.value)

    def send(self, notification: Notification, target: str, attempt: int) -> int | None:
        endpoint = self._settings.endpoint_for(notification.notification_type.value)
        if endpoint is None:
            raise DeliveryError(
                f"no webhook is configured for {notification.notification_type.value} any more",
                retryable=False,
            )
        body = json.dumps(notification.envelope(tries=attempt - 1), sort_keys=True).encode()
        headers = {
            "Content-Type": "application/json",
            NOTIFICATION_ID_HEADER: notification.notification_id,
            ATTEMPT_HEADER: str(attempt),
        }
        if endpoint.secret:
            headers[SIGNATURE_HEADER] = signature(endpoint.secret, body)
        auth = (endpoint.username, endpoint.password or "") if endpoint.username else None
        try:
            response = self._session.post(
                target,
                data=body,
                headers=headers,
                auth=auth,
                verify=endpoint.ssl_verify,
                timeout=self._timeout,
                allow_redirects=False,
            )
        except requests.exceptions.SSLError as exc:
            # A certificate problem does not fix itself between retries, but an operator may fix it
            # within the window: retried.
            raise DeliveryError(f"TLS with {_host(target)} failed: {type(exc).__name__}") from exc
        except requests.RequestException as exc:
            raise DeliveryError(f"POST to {_host(target)} failed: {type(exc).__name__}") from exc
        status = response.status_code
        response.close()
        if 200 <= status < 300:
            return status
        raise DeliveryError(
            f"{_host(target)} answered HTTP {status}", retryable=_retryable(status), status_code=status
        )

    def close(self) -> None:
        self._session.close()


def _host(url: str) -> str:
    # Only the origin: a templated path may carry an account name, a query string a token.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
