"""Email delivery over SMTP: one message per notification to the recipients configured for its type.

The subject is the notification's one-line summary; the body repeats it and carries Anchore's envelope
as JSON, so a mail rule or a script can act on it. STARTTLS (verified unless ``ssl_verify`` is false)
before any credentials are sent; login only when a username is configured. A refusal of every
recipient, or an authentication failure, is permanent; a dropped connection or a 4xx is retried.
"""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import make_msgid

from portwarden.core.errors import DeliveryError
from portwarden.core.watch.config import SmtpSettings
from portwarden.core.watch.notifications import Notification


class SmtpChannel:
    name = "email"

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings

    def target_for(self, notification: Notification) -> str | None:
        recipients = self._settings.recipients_for(notification.notification_type.value)
        return ",".join(recipients) if recipients else None

    def message(self, notification: Notification, target: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.sender
        message["To"] = ", ".join(target.split(","))
        message["Subject"] = f"[portwarden] {notification.summary()}"
        domain = self._settings.sender.rpartition("@")[2] or None
        # One Message-ID per notification: a mail system can drop a duplicate of a retried send.
        message["Message-ID"] = make_msgid(idstring=notification.notification_id, domain=domain)
        message["X-Portwarden-Notification-Type"] = notification.notification_type.value
        message["X-Portwarden-Notification-Id"] = notification.notification_id
        body = json.dumps(notification.envelope(), indent=2, sort_keys=True)
        message.set_content(f"{notification.summary()}\n\n{body}\n")
        return message

    def send(self, notification: Notification, target: str, attempt: int) -> int | None:
        settings = self._settings
        message = self.message(notification, target)
        try:
            with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as client:
                client.ehlo()
                if settings.starttls:
                    context = ssl.create_default_context()
                    if not settings.ssl_verify:
                        context.check_hostname = False
                        context.verify_mode = ssl.CERT_NONE
                    client.starttls(context=context)
                    client.ehlo()
                if settings.username:
                    client.login(settings.username, settings.password or "")
                refused = client.send_message(message, to_addrs=target.split(","))
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(
                f"SMTP login to {settings.host} refused ({exc.smtp_code})", retryable=False
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"{settings.host} refused every recipient", retryable=False) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryError(f"{settings.host} does not support {exc}", retryable=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise DeliveryError(
                f"{settings.host} answered {exc.smtp_code}",
                retryable=exc.smtp_code < 500,
                status_code=exc.smtp_code,
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(
                f"SMTP to {settings.host}:{settings.port} failed: {type(exc).__name__}"
            ) from exc
        if refused:
            # Accepted for some recipients: retrying would send it again to those. Say who was missed.
            raise DeliveryError(f"{settings.host} refused {', '.join(sorted(refused))}", retryable=False)
        return 250
