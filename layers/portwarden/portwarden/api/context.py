"""The current request's caller and the dependencies opened for the account it acts for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from portwarden.api.auth import Caller, ForbiddenError, UnauthenticatedError, caller_of, principal_of
from portwarden.api.dependencies import ApiDependencies, current_event, dependencies
from portwarden.core.errors import NotFoundError, StoreError
from portwarden.core.model.accounts import ADMIN_ACCOUNT, AccountState, AccountType

_T = TypeVar("_T")

SINGLE_ACCOUNT_CALLER = Caller(
    username=ADMIN_ACCOUNT, own_account=ADMIN_ACCOUNT, account=ADMIN_ACCOUNT, is_admin=True
)


@dataclass(frozen=True)
class Scope:
    caller: Caller
    deps: ApiDependencies
    # The host's dependencies before they were opened for the caller's account (account admin).
    host: ApiDependencies

    def need(self, port: _T | None, what: str) -> _T:
        """A port this host may lack (a read-only host has no starter, say): 500 naming it if absent."""
        if port is None:
            raise StoreError(f"this service does not provide {what}")
        return port

    def require_admin(self) -> None:
        if not self.caller.is_admin:
            raise ForbiddenError("this operation needs an admin account")


def _principal(host: ApiDependencies, event: Mapping[str, Any]) -> tuple[str, str, AccountType] | None:
    """The IAM caller's (ARN, account, account type), when the host maps principals to accounts."""
    arn = principal_of(event)
    if arn is None or host.principals is None or host.accounts is None:
        return None
    account = host.principals.principal_account(arn)
    record = host.accounts.get_account(account) if account else None
    if record is None or record.state is not AccountState.ENABLED:
        # A principal without an (enabled) account is let in by IAM but belongs to no one here.
        raise ForbiddenError(f"the IAM principal {arn} is not mapped to an enabled account")
    return arn, record.name, record.type


def scope() -> Scope:
    """Authenticate the request (on a multi-account host) and open the dependencies for its account."""
    host = dependencies()
    if host.accounts is None or host.for_account is None:
        return Scope(caller=SINGLE_ACCOUNT_CALLER, deps=host, host=host)
    event = current_event()
    caller = caller_of(event, _principal(host, event))
    if host.accounts.get_account(caller.account) is None:
        if caller.account != caller.own_account:
            raise NotFoundError(f"no account {caller.account}")
        raise UnauthenticatedError("the caller's account no longer exists")
    return Scope(caller=caller, deps=host.for_account(caller.account), host=host)
