"""Accounts and users (Anchore §1.10): the caller's own account and user, and, for admins, every
account, its state, its users and their credentials. Passwords are only ever stored hashed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter
from pydantic import ConfigDict, Field

from portwarden.api.context import Scope, scope
from portwarden.api.shapes import Account, User, iso
from portwarden.core.errors import ConflictError, InvalidRequestError, NotFoundError
from portwarden.core.model.accounts import (
    ADMIN_ACCOUNT,
    AccountRecord,
    AccountState,
    AccountType,
    UserRecord,
    valid_name,
)
from portwarden.core.model.base import ValueObject
from portwarden.core.ports import AccountStore
from portwarden.core.services.accounts import check_password_rules, hash_password, new_account, new_user

router = APIGatewayRouter()  # type: ignore[no-untyped-call]  # Powertools leaves __init__ unannotated


class _Request(ValueObject):
    model_config = ConfigDict(frozen=True, extra="ignore")


class AccountCreation(_Request):
    name: str
    email: str | None = None


class AccountStateChange(_Request):
    state: Literal["enabled", "disabled"]


class UserCreation(_Request):
    username: str
    password: str = Field(repr=False)


class Credential(_Request):
    type: Literal["password"] = "password"
    value: str = Field(repr=False)


def _accounts(current: Scope) -> AccountStore:
    return current.need(current.host.accounts, "accounts")


def _single_account_records(current: Scope) -> tuple[AccountRecord, UserRecord]:
    """A single-account host has no account store: its one caller is admin of account admin."""
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    account = AccountRecord(name=ADMIN_ACCOUNT, type=AccountType.ADMIN, created_at=epoch, last_updated=epoch)
    user = UserRecord(
        username=current.caller.username,
        account=ADMIN_ACCOUNT,
        password_hash="",
        type="external",
        created_at=epoch,
        last_updated=epoch,
    )
    return account, user


def _account(store: AccountStore, name: str) -> AccountRecord:
    record = store.get_account(name)
    if record is None:
        raise NotFoundError(f"account {name} not found")
    return record


def _user_of(store: AccountStore, account: str, username: str) -> UserRecord:
    user = store.get_user(username)
    # Another account's user is "not found" here, like any record of another account.
    if user is None or user.account != account:
        raise NotFoundError(f"user {username} not found in account {account}")
    return user


# ---- the caller's own ---------------------------------------------------------------------------


@router.get("/account", summary="The caller's account", tags=["accounts"])
def get_own_account() -> Account:
    current = scope()
    if current.host.accounts is None:
        return Account.of(_single_account_records(current)[0])
    return Account.of(_account(current.host.accounts, current.caller.account))


@router.get("/user", summary="The calling user", tags=["accounts"])
def get_own_user() -> User:
    current = scope()
    if current.host.accounts is None:
        return User.of(_single_account_records(current)[1])
    user = current.host.accounts.get_user(current.caller.username)
    if user is None:
        raise NotFoundError(f"user {current.caller.username} not found")
    return User.of(user)


@router.get("/user/credentials", summary="The calling user's credential types", tags=["accounts"])
def get_own_credentials() -> list[dict[str, str | None]]:
    current = scope()
    user = _user_of(_accounts(current), current.caller.own_account, current.caller.username)
    return [{"type": "password", "value": "********", "created_at": iso(user.last_updated)}]


@router.post("/user/credentials", summary="Change the calling user's password", tags=["accounts"])
def set_own_credentials(body: Credential) -> User:
    current = scope()
    store = _accounts(current)
    user = _user_of(store, current.caller.own_account, current.caller.username)
    return User.of(_set_password(store, user, body.value))


def _set_password(store: AccountStore, user: UserRecord, password: str) -> UserRecord:
    try:
        check_password_rules(password)
    except Exception as exc:
        raise InvalidRequestError(str(exc)) from exc
    updated = user.model_copy(
        update={"password_hash": hash_password(password), "last_updated": datetime.now(UTC)}
    )
    store.put_user(updated)
    return updated


# ---- accounts (admin) ---------------------------------------------------------------------------


@router.get("/accounts", summary="Every account (admin)", tags=["accounts"])
def list_accounts(
    state: Annotated[str | None, Query(description="enabled, disabled or deleting")] = None,
) -> list[Account]:
    current = scope()
    current.require_admin()
    records = _accounts(current).list_accounts()
    return [Account.of(r) for r in records if state is None or r.state.value == state]


@router.post("/accounts", summary="Add an account (admin)", tags=["accounts"])
def add_account(body: AccountCreation) -> Account:
    current = scope()
    current.require_admin()
    try:
        valid_name(body.name)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    record = new_account(body.name, email=body.email)
    if not _accounts(current).add_account(record):
        raise ConflictError(f"account {body.name} already exists")
    return Account.of(record)


@router.get("/accounts/<name>", summary="One account (admin)", tags=["accounts"])
def get_account(name: str) -> Account:
    current = scope()
    current.require_admin()
    return Account.of(_account(_accounts(current), name))


@router.delete(
    "/accounts/<name>", summary="Delete a disabled account and all it owns (admin)", tags=["accounts"]
)
def delete_account(name: str) -> None:
    current = scope()
    current.require_admin()
    store = _accounts(current)
    record = _account(store, name)
    if record.type is AccountType.ADMIN:
        raise ConflictError("an admin account cannot be deleted")
    if record.state is AccountState.ENABLED:
        raise ConflictError(f"account {name} must be disabled before it is deleted")
    store.delete_account(name)


@router.put("/accounts/<name>/state", summary="Enable or disable an account (admin)", tags=["accounts"])
def set_account_state(name: str, body: AccountStateChange) -> dict[str, str]:
    current = scope()
    current.require_admin()
    store = _accounts(current)
    record = _account(store, name)
    if record.type is AccountType.ADMIN and body.state == "disabled":
        raise ConflictError("an admin account cannot be disabled")
    store.put_account(
        record.model_copy(update={"state": AccountState(body.state), "last_updated": datetime.now(UTC)})
    )
    return {"state": body.state}


# ---- users of an account (admin) ------------------------------------------------------------------


@router.get("/accounts/<name>/users", summary="Users of an account (admin)", tags=["accounts"])
def list_users(name: str) -> list[User]:
    current = scope()
    current.require_admin()
    store = _accounts(current)
    _account(store, name)
    return [User.of(user) for user in store.list_users(name)]


@router.post("/accounts/<name>/users", summary="Add a user (admin)", tags=["accounts"])
def add_user(name: str, body: UserCreation) -> User:
    current = scope()
    current.require_admin()
    store = _accounts(current)
    _account(store, name)
    try:
        valid_name(body.username)
        user = new_user(name, body.username, body.password)
    except ValueError as exc:
        raise InvalidRequestError(str(exc)) from exc
    if not store.add_user(user):
        raise ConflictError(f"user {body.username} already exists")
    return User.of(user)


@router.get("/accounts/<name>/users/<username>", summary="One user (admin)", tags=["accounts"])
def get_user(name: str, username: str) -> User:
    current = scope()
    current.require_admin()
    return User.of(_user_of(_accounts(current), name, username))


@router.delete("/accounts/<name>/users/<username>", summary="Delete a user (admin)", tags=["accounts"])
def delete_user(name: str, username: str) -> None:
    current = scope()
    current.require_admin()
    store = _accounts(current)
    _user_of(store, name, username)
    if username == current.caller.username:
        raise ConflictError("a user cannot delete itself")
    store.delete_user(username)


@router.get(
    "/accounts/<name>/users/<username>/credentials", summary="A user's credential types", tags=["accounts"]
)
def get_credentials(name: str, username: str) -> list[dict[str, str | None]]:
    current = scope()
    current.require_admin()
    user = _user_of(_accounts(current), name, username)
    return [{"type": "password", "value": "********", "created_at": iso(user.last_updated)}]


@router.post(
    "/accounts/<name>/users/<username>/credentials", summary="Set a password (admin)", tags=["accounts"]
)
def set_credentials(name: str, username: str, body: Credential) -> User:
    current = scope()
    current.require_admin()
    store = _accounts(current)
    return User.of(_set_password(store, _user_of(store, name, username), body.value))
