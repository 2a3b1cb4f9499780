"""Accounts and users: memory-hard password hashes, authentication, the first admin.

Passwords are stored as scrypt hashes (``hashlib.scrypt``: memory-hard, in the standard library, so
no native dependency). The stored string names its parameters, so they can be raised later without
invalidating existing hashes.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from portwarden.core.errors import ConfigurationError
from portwarden.core.model.accounts import (
    ADMIN_ACCOUNT,
    AccountRecord,
    AccountState,
    AccountType,
    UserRecord,
)
from portwarden.core.ports import AccountStore

Clock = Callable[[], datetime]

# 2**14 x 8 x 128 bytes = 16 MiB per hash: memory-hard, and about 50 ms here.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1
_SALT_BYTES = 16
_KEY_BYTES = 32
MIN_PASSWORD_LENGTH = 6
MAX_PASSWORD_LENGTH = 128


def _now() -> datetime:
    return datetime.now(UTC)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    """``scrypt$N$r$p$salt$key``, with a fresh random salt."""
    salt = secrets.token_bytes(_SALT_BYTES)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=_SCRYPT_N, r=_SCRYPT_R, p=_SCRYPT_P, dklen=_KEY_BYTES, maxmem=2**26
    )
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time comparison; a malformed stored hash never verifies."""
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        derived = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=2**26,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, expected)


def check_password_rules(password: str) -> None:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ConfigurationError(f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters")


def new_user(account: str, username: str, password: str, *, clock: Clock = _now) -> UserRecord:
    check_password_rules(password)
    now = clock()
    return UserRecord(
        username=username,
        account=account,
        password_hash=hash_password(password),
        created_at=now,
        last_updated=now,
    )


def new_account(
    name: str, *, email: str | None = None, type: AccountType = AccountType.USER, clock: Clock = _now
) -> AccountRecord:
    now = clock()
    return AccountRecord(name=name, email=email, type=type, created_at=now, last_updated=now)


def ensure_admin(accounts: AccountStore, password: str | None, *, clock: Clock = _now) -> str | None:
    """Create account and user ``admin`` on first start; the generated password when none was given.

    Returns None when the admin already exists (nothing changes: the environment variable seeds the
    first password only, so it cannot silently reset a password changed through the API).
    """
    accounts.add_account(new_account(ADMIN_ACCOUNT, type=AccountType.ADMIN, clock=clock))
    if accounts.get_user(ADMIN_ACCOUNT) is not None:
        return None
    generated = password is None
    secret = password if password is not None else secrets.token_urlsafe(18)
    accounts.add_user(new_user(ADMIN_ACCOUNT, ADMIN_ACCOUNT, secret, clock=clock))
    return secret if generated else None


def authenticate(
    accounts: AccountStore, username: str, password: str
) -> tuple[UserRecord, AccountRecord] | None:
    """The user and its account when the password matches and the account is enabled; None otherwise.

    An unknown user costs a hash computation too, so response times do not reveal which names exist.
    """
    user = accounts.get_user(username)
    if user is None:
        verify_password(password, _dummy_hash())
        return None
    if not verify_password(password, user.password_hash):
        return None
    account = accounts.get_account(user.account)
    if account is None or account.state is not AccountState.ENABLED:
        return None
    return user, account


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(12))
