"""Email through a real SMTP server on 127.0.0.1 (aiosmtpd), and SNS under moto with an SQS
subscription whose filter policy picks notifications by their message attributes."""

from __future__ import annotations

import ipaddress
import json
import ssl
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws

from portwarden.adapters.aws.sns import SnsChannel
from portwarden.adapters.local.smtp_email import SmtpChannel
from portwarden.adapters.local.watch_store import WatchStore
from portwarden.core.services.notify import deliver_due, publish
from portwarden.core.watch.config import RetrySettings, SmtpSettings
from portwarden.core.watch.notifications import (
    DeliveryOutcome,
    Notification,
    NotificationType,
    make_notification,
)
from tests.support.registry import free_port


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"mailer",
        b"pw-123",
    )
    return AuthResult(success=ok, handled=False)


def _notification(kind: NotificationType, key: str, payload: dict[str, Any], **extra: Any) -> Notification:
    return make_notification(
        kind,
        account="admin",
        subscription_key=key,
        payload=payload,
        identity={"payload": payload},
        now=datetime.now(UTC),
        **extra,
    )


def test_email_to_the_recipients_of_the_type_with_login(tmp_path: Path) -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        authenticator=_authenticator,
        auth_require_tls=False,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    controller.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=port,
            starttls=False,
            username="mailer",
            password="pw-123",
            sender="portwarden@example.test",
            recipients={
                "general": ("ops@example.test",),
                "policy_eval": ("sec@example.test", "lead@example.test"),
            },
        )
        channel = SmtpChannel(settings)
        outbox = WatchStore(tmp_path / "watch.db")
        policy = _notification(
            NotificationType.POLICY_EVAL,
            "registry.local/app:1",
            {"last_eval": {"status": "pass"}, "curr_eval": {"status": "fail"}},
        )
        tag = _notification(
            NotificationType.TAG_UPDATE, "registry.local/app:1", {"curr_eval": ["sha256:" + "c" * 64]}
        )
        publish([policy, tag], channels=[channel], outbox=outbox)
        deliver_due(channels=[channel], outbox=outbox, retry=RetrySettings())
        assert outbox.pending() == 0
        recipients = sorted(tuple(sorted(rcpts)) for _, rcpts, _ in inbox.messages)
        assert recipients == [("lead@example.test", "sec@example.test"), ("ops@example.test",)]
        policy_mail = next(content for _, rcpts, content in inbox.messages if "sec@example.test" in rcpts)
        assert b"Subject: [portwarden] policy result of registry.local/app:1: pass -> fail" in policy_mail
        assert policy.notification_id.encode() in policy_mail
        assert b'"queueId": "policy_eval"' in policy_mail

        # Wrong credentials: refused for good, logged as failed (not retried forever).
        bad = SmtpChannel(settings.model_copy(update={"password": "wrong"}))
        other = _notification(NotificationType.TAG_UPDATE, "registry.local/app:2", {"curr_eval": ["x"]})
        publish([other], channels=[bad], outbox=outbox)
        deliver_due(channels=[bad], outbox=outbox, retry=RetrySettings())
        log = outbox.attempts(notification_id=other.notification_id)
        assert [a.outcome for a in log] == [DeliveryOutcome.FAILED]
        assert "login" in log[0].detail
    finally:
        controller.stop()


def test_email_server_down_is_retried(tmp_path: Path) -> None:
    port = free_port()
    settings = SmtpSettings(
        host="127.0.0.1",
        port=port,
        starttls=False,
        sender="p@example.test",
        recipients={"general": ("ops@example.test",)},
        timeout=2,
    )
    channel = SmtpChannel(settings)
    outbox = WatchStore(tmp_path / "watch.db")
    notification = _notification(NotificationType.TAG_UPDATE, "registry.local/app:1", {"curr_eval": ["d"]})
    publish([notification], channels=[channel], outbox=outbox)
    retry = RetrySettings(initial_delay=0.05, max_delay=0.1, window_seconds=30)
    deliver_due(channels=[channel], outbox=outbox, retry=retry)
    assert (
        outbox.attempts(notification_id=notification.notification_id)[0].outcome is DeliveryOutcome.RETRYING
    )
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        stop = time.monotonic() + 10
        while outbox.pending() and time.monotonic() < stop:
            deliver_due(channels=[channel], outbox=outbox, retry=retry)
            time.sleep(0.05)
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def _self_signed(directory: Path) -> ssl.SSLContext:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


def test_starttls_before_login_and_certificate_verification(tmp_path: Path) -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=_self_signed(tmp_path),
        require_starttls=True,
        authenticator=_authenticator,
        auth_require_tls=True,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    controller.start()
    try:
        settings = SmtpSettings(
            host="127.0.0.1",
            port=port,
            starttls=True,
            username="mailer",
            password="pw-123",
            sender="p@example.test",
            recipients={"general": ("ops@example.test",)},
            timeout=5,
        )
        outbox = WatchStore(tmp_path / "watch.db")
        retry = RetrySettings(window_seconds=0)
        # Verification is on by default: a self-signed certificate is refused, nothing is sent.
        verified = SmtpChannel(settings)
        refused = _notification(NotificationType.TAG_UPDATE, "registry.local/app:1", {"curr_eval": ["f"]})
        publish([refused], channels=[verified], outbox=outbox)
        deliver_due(channels=[verified], outbox=outbox, retry=retry)
        (attempt,) = outbox.attempts(notification_id=refused.notification_id)
        assert attempt.outcome is DeliveryOutcome.FAILED and "SSL" in attempt.detail
        assert inbox.messages == []
        # With verification off for this test server: STARTTLS, login, delivered.
        unverified = SmtpChannel(settings.model_copy(update={"ssl_verify": False}))
        sent = _notification(NotificationType.TAG_UPDATE, "registry.local/app:2", {"curr_eval": ["g"]})
        publish([sent], channels=[unverified], outbox=outbox)
        deliver_due(channels=[unverified], outbox=outbox, retry=retry)
        assert [a.outcome for a in outbox.attempts(notification_id=sent.notification_id)] == [
            DeliveryOutcome.DELIVERED
        ]
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


@pytest.fixture
def aws() -> Any:
    with mock_aws():
        yield boto3.session.Session(region_name="us-east-1")


def test_sns_publish_with_attributes_reaches_a_filtered_sqs_subscription(aws: Any, tmp_path: Path) -> None:
    sns = aws.client("sns")
    sqs = aws.client("sqs")
    topic = sns.create_topic(Name="portwarden-notifications")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="policy-failures")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=queue_arn,
        Attributes={
            # Only policy_eval failures of one repository's tags, as docs/notifications.md shows.
            "FilterPolicy": json.dumps(
                {
                    "notification_type": ["policy_eval"],
                    "policy_status": ["fail"],
                    "subscription_key": [{"prefix": "registry.local/app:"}],
                }
            ),
            "RawMessageDelivery": "true",
        },
    )
    vuln_queue = sqs.create_queue(QueueName="critical-vulns")["QueueUrl"]
    vuln_arn = sqs.get_queue_attributes(QueueUrl=vuln_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=vuln_arn,
        Attributes={"FilterPolicy": json.dumps({"severity_max": ["Critical"]}), "RawMessageDelivery": "true"},
    )
    channel = SnsChannel(topic, client=sns)
    outbox = WatchStore(tmp_path / "watch.db")
    wanted = _notification(
        NotificationType.POLICY_EVAL,
        "registry.local/app:1",
        {"last_eval": {"status": "pass"}, "curr_eval": {"status": "fail", "final_action": "stop"}},
    )
    other_repo = _notification(
        NotificationType.POLICY_EVAL,
        "registry.local/other:1",
        {"last_eval": {"status": "pass"}, "curr_eval": {"status": "fail"}},
    )
    passing = _notification(
        NotificationType.POLICY_EVAL,
        "registry.local/app:2",
        {"last_eval": {"status": "fail"}, "curr_eval": {"status": "pass"}},
    )
    critical = _notification(
        NotificationType.VULN_UPDATE,
        "registry.local/app:1",
        {"diff_vulnerability_result": {"added": [{"CVE_ID": "CVE-2099-1"}], "removed": [], "updated": []}},
        severity_max="Critical",
    )
    publish([wanted, other_repo, passing, critical], channels=[channel], outbox=outbox)
    report = deliver_due(channels=[channel], outbox=outbox, retry=RetrySettings())
    assert report.delivered == 4

    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    messages = received.get("Messages", [])
    assert len(messages) == 1
    body = json.loads(messages[0]["Body"])
    assert body["dataId"] == wanted.notification_id
    assert body["data"]["notification_payload"]["curr_eval"]["status"] == "fail"
    attributes = {name: value["StringValue"] for name, value in messages[0]["MessageAttributes"].items()}
    assert attributes["notification_type"] == "policy_eval"
    assert attributes["account"] == "admin"
    assert attributes["subscription_key"] == "registry.local/app:1"
    vulns = sqs.receive_message(QueueUrl=vuln_queue, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    assert [json.loads(m["Body"])["dataId"] for m in vulns.get("Messages", [])] == [critical.notification_id]


def test_sns_missing_topic_is_a_permanent_failure(aws: Any, tmp_path: Path) -> None:
    sns = aws.client("sns")
    channel = SnsChannel("arn:aws:sns:us-east-1:123456789012:absent", client=sns)
    outbox = WatchStore(tmp_path / "watch.db")
    notification = _notification(NotificationType.TAG_UPDATE, "registry.local/app:1", {"curr_eval": ["e"]})
    publish([notification], channels=[channel], outbox=outbox)
    deliver_due(channels=[channel], outbox=outbox, retry=RetrySettings())
    log = outbox.attempts(notification_id=notification.notification_id)
    assert [a.outcome for a in log] == [DeliveryOutcome.FAILED]
    assert "NotFound" in log[0].detail
