"""User accounts on a SQLite store: register, login, logout, user-tokens, roles.

BACKENDLESS.md, "Users and permissions". A user registers with an identity —
"email" if the object has one, else "login" (then a "login" beside an email is
an ordinary field) — and a password; identities, emails and logins alike, are
unique regardless of letter case. Every other field of the user object is kept as it
is (any JSON) and answered back, never the password. Login answers the user
object plus a "user-token"; the token stands for the user until it expires
(`token_ttl`, 30 days by default) or is logged out.

Secrets at rest: passwords are hashed with scrypt under a per-user random salt,
the parameters stored with the hash (`scrypt$n$r$p$salt$hash`), so raising them
later only needs a new `scrypt_n` (or r, p): each user's hash is redone with the
configured parameters at their next successful login, and until then the old
ones still verify it. Tokens are 256 random bits handed out once; only their
SHA-256 is stored. Hashing runs on worker threads, at most `max_hashing` at a
time, so the event loop never stalls and a burst of logins cannot take
unbounded memory (scrypt with n=2**14, r=8 needs 16 MiB each).

Expired tokens read as invalid and are deleted lazily: the one presented when
it is found expired, and all expired ones at every login. Recently used tokens
are kept in a bounded in-memory cache, so authenticating a request usually
costs no database read; logout and role changes take effect at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import os
import re
import secrets
import sqlite3
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol, TypeVar

import anyio
import msgspec
from anyio import to_thread

from broker._clock import Clock
from broker._errors import BrokerError, InvalidArgumentError
from broker.permissions import AUTHENTICATED_USER, SYSTEM_ROLES, check_role

__all__ = [
    "Accounts",
    "IdentityTakenError",
    "InvalidLoginError",
    "InvalidUserTokenError",
    "SqlStore",
    "UnknownUserError",
    "User",
]

T = TypeVar("T")

DEFAULT_TOKEN_TTL = 30 * 86_400.0
MAX_IDENTITY = 255
MAX_PASSWORD = 1024
SALT_BYTES = 16
HASH_BYTES = 32
# Set by the server, whatever the client sends (the JS SDK sends "___class" back, for one).
SERVER_FIELDS = frozenset({"objectId", "ownerId", "created", "updated", "___class", "user-token"})
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    object_id TEXT PRIMARY KEY,
    identity TEXT NOT NULL,
    identity_key TEXT NOT NULL UNIQUE,
    password TEXT NOT NULL,
    fields BLOB NOT NULL,
    roles TEXT NOT NULL,
    created INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS user_tokens (
    token_hash BLOB PRIMARY KEY,
    object_id TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS user_tokens_expires ON user_tokens (expires);
CREATE INDEX IF NOT EXISTS user_tokens_user ON user_tokens (object_id);
"""

_encode = msgspec.json.Encoder().encode
_decode_fields = msgspec.json.Decoder(dict[str, Any]).decode
_decode_roles = msgspec.json.Decoder(tuple[str, ...]).decode


class InvalidLoginError(BrokerError):
    """Unknown login or wrong password; the same answer for both (HTTP 401)."""

    def __init__(self) -> None:
        super().__init__(3003, "invalid login or password")


class IdentityTakenError(BrokerError):
    """A user with this email or login already exists, in any letter case."""

    def __init__(self, field: str) -> None:
        super().__init__(3033, f"a user with this {field} already exists")


class InvalidUserTokenError(BrokerError):
    """A user-token that is unknown, logged out or expired (HTTP 401)."""

    def __init__(self) -> None:
        super().__init__(3064, "user-token is not valid")


class UnknownUserError(BrokerError):
    """No user has this objectId (admin calls)."""

    def __init__(self, object_id: str) -> None:
        super().__init__(3020, f"no user has objectId {object_id!r}")


class User(msgspec.Struct, frozen=True):
    """Who a user-token stands for: what permission checks need."""

    object_id: str
    identity: str
    roles: tuple[str, ...]  # "AuthenticatedUser" first, then the custom roles


class SqlStore(Protocol):
    """What Accounts needs of a store: broker.stores.SqliteStore has it."""

    async def ensure_schema(self, script: str) -> None: ...

    async def transact(self, work: Callable[[sqlite3.Connection], T]) -> T: ...

    async def query(self, work: Callable[[sqlite3.Connection], T]) -> T: ...


class _Scrypt(msgspec.Struct, frozen=True):
    n: int
    r: int
    p: int

    def derive(self, password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(
            password.encode(),
            salt=salt,
            n=self.n,
            r=self.r,
            p=self.p,
            maxmem=128 * self.r * (self.n + self.p + 2) + (1 << 20),
            dklen=HASH_BYTES,
        )

    def hash(self, password: str) -> str:
        salt = os.urandom(SALT_BYTES)
        digest = self.derive(password, salt)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _verify(password: str, encoded: str) -> tuple[bool, _Scrypt]:
    """Whether `password` matches `encoded`, compared in constant time; and its parameters."""
    _, n, r, p, salt, digest = encoded.split("$")
    params = _Scrypt(int(n), int(r), int(p))
    derived = params.derive(password, base64.b64decode(salt))
    return hmac.compare_digest(derived, base64.b64decode(digest)), params


def _token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


class Accounts:
    """Users on `store` (opened by the caller), under injected time (`clock`, epoch seconds)."""

    def __init__(
        self,
        store: SqlStore,
        *,
        clock: Clock = time.time,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        scrypt_n: int = 2**14,
        scrypt_r: int = 8,
        scrypt_p: int = 1,
        max_hashing: int = 4,
        cache_size: int = 4096,
    ) -> None:
        if not (math.isfinite(token_ttl) and token_ttl > 0):
            raise ValueError("token_ttl must be a positive number of seconds")
        if scrypt_n < 2 or scrypt_n & (scrypt_n - 1) or scrypt_r < 1 or scrypt_p < 1:
            raise ValueError("scrypt_n must be a power of 2 above 1; scrypt_r and scrypt_p >= 1")
        if max_hashing < 1 or cache_size < 0:
            raise ValueError("max_hashing must be >= 1 and cache_size >= 0")
        self._store = store
        self._clock = clock
        self._token_ttl = float(token_ttl)
        self._scrypt = _Scrypt(scrypt_n, scrypt_r, scrypt_p)
        self._max_hashing = max_hashing
        self._limiter: anyio.CapacityLimiter | None = None
        # Compared against when the login is unknown, so that costs what a wrong password does.
        self._decoy_hash = (
            f"scrypt${scrypt_n}${scrypt_r}${scrypt_p}${_b64(os.urandom(SALT_BYTES))}$"
            f"{_b64(bytes(HASH_BYTES))}"
        )
        self._cache: OrderedDict[bytes, tuple[User, float]] = OrderedDict()
        self._cache_size = cache_size
        self._generation = 0  # bumped by every logout and role change
        self._watchers: list[Callable[[], object]] = []

    def watch(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call `callback` after every logout and role change (so that holders of
        long-lived sessions, such as websocket connections, check their users again);
        returns the function that stops watching."""
        self._watchers.append(callback)
        return lambda: self._watchers.remove(callback)

    def _changed(self) -> None:
        for callback in list(self._watchers):
            callback()

    async def open(self) -> None:
        """Create the tables if they are missing; the store must be open."""
        await self._store.ensure_schema(_SCHEMA)

    async def _hashing(self, work: Callable[[], T]) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self._max_hashing)
        return await to_thread.run_sync(work, limiter=self._limiter)

    def _now(self) -> float:
        return self._clock()

    # -- register ----------------------------------------------------------------------------

    async def register(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create a user; the user object without the password.

        InvalidArgumentError (8002): not an object, no or invalid email/login, no
        or invalid password, a value that is not JSON. IdentityTakenError (3033).
        """
        if not isinstance(fields, Mapping) or not all(isinstance(key, str) for key in fields):
            raise InvalidArgumentError("a user must be an object with string keys")
        field = "email" if fields.get("email") is not None else "login"
        identity = _check_identity(field, fields.get(field))
        password = fields.get("password")
        if not isinstance(password, str) or not password or not _is_text(password):
            raise InvalidArgumentError("password is required: a non-empty string")
        if len(password) > MAX_PASSWORD:
            raise InvalidArgumentError(f"password is longer than {MAX_PASSWORD} characters")
        object_id = str(uuid.uuid4()).upper()
        created = round(self._now() * 1000)
        user = {key: value for key, value in fields.items() if key not in SERVER_FIELDS}
        del user["password"]
        user.update(
            {
                "objectId": object_id,
                "ownerId": object_id,
                "created": created,
                "updated": None,
                "___class": "Users",
            }
        )
        try:
            encoded = _encode(user)
        except (TypeError, ValueError) as exc:
            raise InvalidArgumentError(f"a user field is not JSON: {exc}") from None
        hashed = await self._hashing(lambda: self._scrypt.hash(password))
        row = (object_id, identity, identity.casefold(), hashed, encoded, "[]", created)

        def insert(con: sqlite3.Connection) -> None:
            con.execute("INSERT INTO users VALUES (?, ?, ?, ?, ?, ?, ?)", row)

        try:
            await self._store.transact(insert)
        except sqlite3.IntegrityError:
            raise IdentityTakenError(field) from None
        return _decode_fields(encoded)

    # -- login / logout ----------------------------------------------------------------------

    async def login(self, login: str, password: str) -> dict[str, Any]:
        """The user object plus a new "user-token"; InvalidLoginError (3003) if the login
        is unknown or the password wrong, InvalidArgumentError (8002) if either is not a string.
        """
        if not (isinstance(login, str) and isinstance(password, str)):
            raise InvalidArgumentError("login and password must be strings")
        if not (_is_text(login) and _is_text(password)):
            raise InvalidArgumentError("login and password must be valid Unicode text")
        key = login.casefold()

        def find(con: sqlite3.Connection) -> tuple[str, str, bytes] | None:
            row: tuple[str, str, bytes] | None = con.execute(
                "SELECT object_id, password, fields FROM users WHERE identity_key = ?", (key,)
            ).fetchone()
            return row

        found = await self._store.query(find)
        encoded = self._decoy_hash if found is None else found[1]
        matches, params = await self._hashing(lambda: _verify(password, encoded))
        if found is None or not matches:
            raise InvalidLoginError()
        object_id, _, user_fields = found
        rehashed = None
        if params != self._scrypt:
            rehashed = await self._hashing(lambda: self._scrypt.hash(password))
        token = secrets.token_urlsafe(32)
        now = self._now()
        token_row = (_token_hash(token), object_id, now + self._token_ttl)

        def record(con: sqlite3.Connection) -> None:
            con.execute("DELETE FROM user_tokens WHERE expires <= ?", (now,))
            con.execute("INSERT INTO user_tokens VALUES (?, ?, ?)", token_row)
            if rehashed is not None:
                con.execute(
                    "UPDATE users SET password = ? WHERE object_id = ?", (rehashed, object_id)
                )

        await self._store.transact(record)
        user = _decode_fields(user_fields)
        user["user-token"] = token
        return user

    async def logout(self, token: str) -> None:
        """End the session of `token`; InvalidUserTokenError (3064) if it is not valid."""
        token_hash = self._valid_hash(token)
        now = self._now()

        def revoke(con: sqlite3.Connection) -> bool:
            row = con.execute(
                "SELECT expires FROM user_tokens WHERE token_hash = ?", (token_hash,)
            ).fetchone()
            if row is None:
                return False
            con.execute("DELETE FROM user_tokens WHERE token_hash = ?", (token_hash,))
            return bool(row[0] > now)

        revoked = await self._store.transact(revoke)
        self._generation += 1  # after the commit: see _forget
        self._cache.pop(token_hash, None)
        self._changed()
        if not revoked:
            raise InvalidUserTokenError()

    # -- authenticate ------------------------------------------------------------------------

    async def authenticate(self, token: str) -> User:
        """The user `token` stands for; InvalidUserTokenError (3064) if it is unknown,
        logged out or expired."""
        token_hash = self._valid_hash(token)
        now = self._now()
        cached = self._cache.get(token_hash)
        if cached is not None:
            user, expires = cached
            if expires > now:
                self._cache.move_to_end(token_hash)
                return user
            del self._cache[token_hash]
        generation = self._generation

        def find(con: sqlite3.Connection) -> tuple[float, str, str, str] | None:
            row: tuple[float, str, str, str] | None = con.execute(
                "SELECT t.expires, u.object_id, u.identity, u.roles FROM user_tokens AS t "
                "JOIN users AS u ON u.object_id = t.object_id WHERE t.token_hash = ?",
                (token_hash,),
            ).fetchone()
            return row

        found = await self._store.query(find)
        if found is None:
            raise InvalidUserTokenError()
        expires, object_id, identity, roles = found
        if expires <= now:
            await self._store.transact(
                lambda con: (
                    con.execute(
                        "DELETE FROM user_tokens WHERE token_hash = ?", (token_hash,)
                    ).rowcount
                )
            )
            raise InvalidUserTokenError()
        user = User(object_id, identity, (AUTHENTICATED_USER, *_decode_roles(roles)))
        if generation == self._generation:  # no logout or role change raced the read
            self._cache[token_hash] = (user, expires)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return user

    def _forget(self, object_id: str) -> None:
        """After a commit changed a user: drop their cached tokens, and keep a read that
        started before the commit from caching what it saw."""
        self._generation += 1
        for token_hash, (user, _) in list(self._cache.items()):
            if user.object_id == object_id:
                del self._cache[token_hash]

    def _valid_hash(self, token: object) -> bytes:
        if not isinstance(token, str) or not token:
            raise InvalidUserTokenError()
        return _token_hash(token)

    # -- admin -------------------------------------------------------------------------------

    async def set_roles(self, object_id: str, roles: Iterable[str]) -> User:
        """Replace the custom roles of a user; the user as a token of theirs now reads.

        InvalidArgumentError (8002) for an invalid role name or a system role
        (AuthenticatedUser is implied, NotAuthenticatedUser contradicts a user);
        UnknownUserError (3020) if no user has `object_id`.
        """
        if isinstance(roles, str):
            raise InvalidArgumentError("roles must be a list of role names, not one string")
        custom = tuple(dict.fromkeys(check_role(role) for role in roles))
        for role in custom:
            if role in SYSTEM_ROLES:
                raise InvalidArgumentError(f"{role} is a system role; it cannot be assigned")
        encoded = _encode(custom).decode()

        def update(con: sqlite3.Connection) -> str | None:
            rows = con.execute(
                "UPDATE users SET roles = ? WHERE object_id = ? RETURNING identity",
                (encoded, object_id),
            ).fetchall()
            return str(rows[0][0]) if rows else None

        identity = await self._store.transact(update)
        self._forget(object_id)
        self._changed()
        if identity is None:
            raise UnknownUserError(object_id)
        return User(object_id, identity, (AUTHENTICATED_USER, *custom))


def _is_text(value: str) -> bool:
    """Whether `value` encodes as UTF-8 (a lone surrogate from a lax JSON parser does not)."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_identity(field: str, value: object) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidArgumentError("email or login is required: a non-empty string")
    if len(value) > MAX_IDENTITY:
        raise InvalidArgumentError(f"{field} is longer than {MAX_IDENTITY} characters")
    if value != value.strip() or _CONTROL.search(value) or not _is_text(value):
        raise InvalidArgumentError(
            f"{field} may not have leading or trailing whitespace, control characters "
            "or lone surrogates"
        )
    if field == "email" and not _EMAIL.fullmatch(value):
        raise InvalidArgumentError(f"{value!r} is not an email address")
    return value
