"""Who is calling, and for which account.

The host authenticates; the resolver only reads the outcome from the proxy event:

* ``portwarden serve`` checks HTTP Basic against the stored users and passes the caller in
  ``requestContext.authorizer`` (as a Lambda authorizer would on API Gateway);
* on API Gateway with IAM authentication, ``requestContext.identity.userArn`` is the caller's IAM
  principal, which maps to an account through the principal table (``PrincipalStore``).

An admin account's user may act for another account with the ``x-anchore-account`` header.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from portwarden.core.errors import PortwardenError
from portwarden.core.model.accounts import AccountType

AUTHORIZER_ACCOUNT = "portwarden_account"
AUTHORIZER_USER = "portwarden_user"
AUTHORIZER_ACCOUNT_TYPE = "portwarden_account_type"
ACT_AS_HEADER = "x-anchore-account"


class UnauthenticatedError(PortwardenError):
    """No caller could be established (401)."""


class ForbiddenError(PortwardenError):
    """The caller may not do this (403)."""


@dataclass(frozen=True)
class Caller:
    username: str
    # The caller's own account, and the one this request acts for (differs only for an admin's
    # ``x-anchore-account``).
    own_account: str
    account: str
    is_admin: bool


def header(event: Mapping[str, Any], name: str) -> str | None:
    for key, value in (event.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def principal_of(event: Mapping[str, Any]) -> str | None:
    """The IAM principal API Gateway authenticated (``requestContext.identity.userArn``)."""
    identity = (event.get("requestContext") or {}).get("identity") or {}
    arn = identity.get("userArn")
    return arn if isinstance(arn, str) and arn else None


def caller_of(event: Mapping[str, Any], principal: tuple[str, str, AccountType] | None = None) -> Caller:
    """The authenticated caller of a proxy event, and the account the request acts for.

    The host's authorizer context names it (``portwarden serve``); failing that, ``principal`` is
    the IAM principal's (ARN, account, account type) the host looked up.
    """
    context = event.get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    account = authorizer.get(AUTHORIZER_ACCOUNT)
    username = authorizer.get(AUTHORIZER_USER)
    account_type = authorizer.get(AUTHORIZER_ACCOUNT_TYPE)
    if (not account or not username) and principal is not None:
        username, account, principal_type = principal
        account_type = principal_type.value
    if not account or not username:
        raise UnauthenticatedError("no authenticated caller")
    is_admin = account_type == AccountType.ADMIN.value
    acting = header(event, ACT_AS_HEADER)
    if acting and acting != account:
        if not is_admin:
            raise ForbiddenError(f"user {username} may not act for account {acting}")
        return Caller(username=username, own_account=account, account=acting, is_admin=True)
    return Caller(username=username, own_account=account, account=account, is_admin=is_admin)
