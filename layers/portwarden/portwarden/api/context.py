"""The current request's caller and the dependencies opened for the account it acts for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from portwarden.api.auth import Caller, ForbiddenError, UnauthenticatedError, caller_of
from portwarden.api.dependencies import ApiDependencies, current_event, dependencies
from portwarden.core.errors import NotFoundError, StoreError
from portwarden.core.model.accounts import ADMIN_ACCOUNT

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


def scope() -> Scope:
    """Authenticate the request (on a multi-account host) and open the dependencies for its account."""
    host = dependencies()
    if host.accounts is None or host.for_account is None:
        return Scope(caller=SINGLE_ACCOUNT_CALLER, deps=host, host=host)
    caller = caller_of(current_event())
    if host.accounts.get_account(caller.account) is None:
        if caller.account != caller.own_account:
            raise NotFoundError(f"no account {caller.account}")
        raise UnauthenticatedError("the caller's account no longer exists")
    return Scope(caller=caller, deps=host.for_account(caller.account), host=host)
