"""User accounts: register, login, logout, user-tokens, roles; all on a SqliteStore."""

from __future__ import annotations

import math
import sqlite3
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
import pytest

from broker import BrokerError
from broker._errors import InvalidArgumentError
from broker.accounts import (
    Accounts,
    IdentityTakenError,
    InvalidLoginError,
    InvalidUserTokenError,
    UnknownUserError,
    User,
)
from broker.permissions import AUTHENTICATED_USER, Permission, Permissions
from broker.stores import SqliteStore, StatusPolicy
from broker.testing import VirtualClock

T = TypeVar("T")
FAST: dict[str, Any] = {"scrypt_n": 2**4, "scrypt_r": 1}  # cheap hashing for tests
TTL = 3600.0
ALICE = {"email": "Alice@Example.com", "password": "s3cret", "name": "Alice"}


class Store:
    """A SqliteStore that counts reads and can run a hook right after one (to stage races)."""

    def __init__(self, path: Path) -> None:
        self.inner = SqliteStore(path)
        self.queries = 0
        self.after_query: Callable[[], Awaitable[object]] | None = None

    async def open(self) -> None:
        await self.inner.open(StatusPolicy())

    async def close(self) -> None:
        await self.inner.close()

    async def ensure_schema(self, script: str) -> None:
        await self.inner.ensure_schema(script)

    async def transact(self, work: Callable[[sqlite3.Connection], T]) -> T:
        return await self.inner.transact(work)

    async def query(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self.queries += 1
        result = await self.inner.query(work)
        hook, self.after_query = self.after_query, None
        if hook is not None:
            await hook()
        return result

    async def tokens(self) -> int:
        return await self.inner.query(
            lambda con: int(con.execute("SELECT count(*) FROM user_tokens").fetchone()[0])
        )

    async def password_of(self, object_id: str) -> str:
        return await self.inner.query(
            lambda con: str(
                con.execute(
                    "SELECT password FROM users WHERE object_id = ?", (object_id,)
                ).fetchone()[0]
            )
        )


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tidings.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[Store]:
    opened = Store(db_path)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def accounts(store: Store, clock: VirtualClock) -> Accounts:
    made = Accounts(store, clock=clock, token_ttl=TTL, **FAST)
    await made.open()
    return made


# -- register ----------------------------------------------------------------------------------


async def test_register_answers_the_user_object_without_the_password(
    accounts: Accounts, clock: VirtualClock
) -> None:
    user = await accounts.register(
        {**ALICE, "age": 31, "address": {"city": "Tokyo", "tags": ["a", 1, None, True]}}
    )
    object_id = user.pop("objectId")
    assert uuid.UUID(object_id)
    assert user == {
        "email": "Alice@Example.com",
        "name": "Alice",
        "age": 31,
        "address": {"city": "Tokyo", "tags": ["a", 1, None, True]},
        "ownerId": object_id,
        "created": round(clock() * 1000),
        "updated": None,
        "___class": "Users",
    }


async def test_every_user_gets_its_own_object_id(accounts: Accounts) -> None:
    first = await accounts.register({"login": "one", "password": "p"})
    second = await accounts.register({"login": "two", "password": "p"})
    assert first["objectId"] != second["objectId"]


async def test_login_is_the_identity_when_there_is_no_email(accounts: Accounts) -> None:
    user = await accounts.register({"login": "bob", "email": None, "password": "pw"})
    assert user["login"] == "bob"
    assert user["email"] is None  # kept as sent
    assert (await accounts.login("BOB", "pw"))["objectId"] == user["objectId"]


async def test_with_both_the_email_is_the_identity_and_login_a_plain_field(
    accounts: Accounts,
) -> None:
    user = await accounts.register({"email": "c@x.io", "login": "carol", "password": "pw"})
    assert user["login"] == "carol"
    assert (await accounts.login("c@x.io", "pw"))["objectId"] == user["objectId"]
    with pytest.raises(InvalidLoginError):
        await accounts.login("carol", "pw")


async def test_fields_the_server_sets_cannot_be_sent(accounts: Accounts) -> None:
    user = await accounts.register(
        {
            **ALICE,
            "objectId": "mine",
            "ownerId": "mine",
            "created": 1,
            "updated": 2,
            "___class": "Admins",
            "user-token": "forged",
        }
    )
    assert user["objectId"] != "mine"
    assert user["ownerId"] == user["objectId"]
    assert (user["created"], user["updated"], user["___class"]) == (
        round(accounts._clock() * 1000),
        None,
        "Users",
    )
    assert "user-token" not in user


async def test_a_roles_field_is_only_data(accounts: Accounts) -> None:
    await accounts.register({**ALICE, "roles": ["Admin"]})
    token = (await accounts.login(ALICE["email"], ALICE["password"]))["user-token"]
    assert (await accounts.authenticate(token)).roles == (AUTHENTICATED_USER,)


@pytest.mark.parametrize(
    ("first", "second", "field"),
    [
        ({"email": "Alice@Example.com"}, {"email": "alice@EXAMPLE.com"}, "email"),
        ({"login": "Bob"}, {"login": "bOB"}, "login"),
        ({"email": "a@b.c"}, {"login": "A@B.C"}, "login"),  # one namespace of identities
    ],
)
async def test_an_identity_is_taken_in_any_letter_case(
    accounts: Accounts, first: dict[str, str], second: dict[str, str], field: str
) -> None:
    await accounts.register({**first, "password": "p"})
    with pytest.raises(IdentityTakenError) as caught:
        await accounts.register({**second, "password": "q"})
    assert caught.value.code == 3033
    assert caught.value.message == f"a user with this {field} already exists"
    # The first user's password still works; the second registration left nothing behind.
    await accounts.login(next(iter(first.values())), "p")
    with pytest.raises(InvalidLoginError):
        await accounts.login(next(iter(second.values())), "q")


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        (["email", "password"], "object with string keys"),
        ({1: "x", "email": "a@b.c", "password": "p"}, "object with string keys"),
        ({"password": "p"}, "email or login is required"),
        ({"email": "", "password": "p"}, "email or login is required"),
        ({"email": 5, "password": "p"}, "email or login is required"),
        ({"login": ["bob"], "password": "p"}, "email or login is required"),
        ({"email": "not-an-email", "password": "p"}, "not an email address"),
        ({"email": "a@b@c", "password": "p"}, "not an email address"),
        ({"email": " a@b.c", "password": "p"}, "leading or trailing whitespace"),
        ({"login": "bob\n", "password": "p"}, "leading or trailing whitespace"),
        ({"login": "b\x07ob", "password": "p"}, "control characters"),
        ({"login": "b\ud800ob", "password": "p"}, "lone surrogates"),
        ({"login": "b" * 256, "password": "p"}, "login is longer than 255"),
        ({"email": "a@b.c"}, "password is required"),
        ({"email": "a@b.c", "password": ""}, "password is required"),
        ({"email": "a@b.c", "password": 1234}, "password is required"),
        ({"email": "a@b.c", "password": "\udc80"}, "password is required"),
        ({"email": "a@b.c", "password": "p" * 1025}, "longer than 1024"),
        ({"email": "a@b.c", "password": "p", "pet": object()}, "not JSON"),
        ({"email": "a@b.c", "password": "p", "pet": "\ud800"}, "not JSON"),
    ],
)
async def test_invalid_registrations_answer_8002(
    accounts: Accounts, fields: Any, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment) as caught:
        await accounts.register(fields)
    assert caught.value.code == 8002


async def test_the_longest_identity_and_password_are_accepted(accounts: Accounts) -> None:
    login, password = "b" * 255, "p" * 1024
    await accounts.register({"login": login, "password": password})
    await accounts.login(login, password)


# -- login -------------------------------------------------------------------------------------


async def test_login_answers_the_user_object_and_a_token(accounts: Accounts) -> None:
    registered = await accounts.register(ALICE)
    user = await accounts.login("alice@example.COM", "s3cret")
    token = user.pop("user-token")
    assert user == registered
    assert isinstance(token, str)
    assert len(token) >= 40
    assert (await accounts.authenticate(token)).object_id == registered["objectId"]


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("Alice@Example.com", "S3cret"),  # passwords are case-sensitive
        ("Alice@Example.com", "s3cret "),
        ("Alice@Example.com", ""),
        ("nobody@example.com", "s3cret"),
        ("", "s3cret"),
    ],
)
async def test_a_wrong_login_or_password_answers_3003_either_way(
    accounts: Accounts, login: str, password: str
) -> None:
    await accounts.register(ALICE)
    with pytest.raises(InvalidLoginError) as caught:
        await accounts.login(login, password)
    assert (caught.value.code, caught.value.message) == (3003, "invalid login or password")


@pytest.mark.parametrize(
    ("login", "password", "fragment"),
    [
        (None, "p", "must be strings"),
        ("a@b.c", 5, "must be strings"),
        ("a\ud800", "p", "valid Unicode"),
        ("a@b.c", "\ud800", "valid Unicode"),
    ],
)
async def test_a_login_that_is_not_text_answers_8002(
    accounts: Accounts, login: Any, password: Any, fragment: str
) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment):
        await accounts.login(login, password)


async def test_each_login_is_its_own_session(accounts: Accounts) -> None:
    await accounts.register(ALICE)
    first = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    second = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    assert first != second
    await accounts.logout(first)
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(first)
    assert (await accounts.authenticate(second)).identity == ALICE["email"]


async def test_many_logins_at_once_all_succeed(store: Store, clock: VirtualClock) -> None:
    accounts = Accounts(store, clock=clock, max_hashing=2, **FAST)
    await accounts.open()
    await accounts.register(ALICE)
    tokens: list[str] = []

    async def login() -> None:
        tokens.append((await accounts.login(ALICE["email"], "s3cret"))["user-token"])

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(login)
    assert len(set(tokens)) == 8


async def test_the_default_scrypt_parameters_work(store: Store) -> None:
    accounts = Accounts(store)  # n=2**14, r=8: 16 MiB of scrypt memory
    await accounts.open()
    user = await accounts.register(ALICE)
    assert (await store.password_of(user["objectId"])).startswith("scrypt$16384$8$1$")
    await accounts.login(ALICE["email"], "s3cret")


async def test_a_password_hash_is_upgraded_at_login_when_parameters_rise(
    store: Store, clock: VirtualClock
) -> None:
    weak = Accounts(store, clock=clock, scrypt_n=2**4, scrypt_r=1)
    await weak.open()
    object_id = (await weak.register(ALICE))["objectId"]
    old_hash = await store.password_of(object_id)
    assert old_hash.startswith("scrypt$16$1$1$")

    strong = Accounts(store, clock=clock, scrypt_n=2**5, scrypt_r=2)
    await strong.login(ALICE["email"], "s3cret")
    new_hash = await store.password_of(object_id)
    assert new_hash.startswith("scrypt$32$2$1$")
    await strong.login(ALICE["email"], "s3cret")
    assert await store.password_of(object_id) == new_hash  # upgraded once
    # The parameters travel with the hash: the weaker configuration still verifies it.
    await weak.login(ALICE["email"], "s3cret")
    with pytest.raises(InvalidLoginError):
        await strong.login(ALICE["email"], "wrong")


async def test_passwords_are_salted_per_user(accounts: Accounts, store: Store) -> None:
    one = await accounts.register({"login": "one", "password": "same"})
    two = await accounts.register({"login": "two", "password": "same"})
    hash_one = await store.password_of(one["objectId"])
    hash_two = await store.password_of(two["objectId"])
    assert hash_one != hash_two
    assert "same" not in hash_one


# -- tokens ------------------------------------------------------------------------------------


async def test_authenticate_answers_who_the_token_stands_for(accounts: Accounts) -> None:
    registered = await accounts.register(ALICE)
    token = (await accounts.login("alice@example.com", "s3cret"))["user-token"]
    assert await accounts.authenticate(token) == User(
        object_id=registered["objectId"], identity="Alice@Example.com", roles=(AUTHENTICATED_USER,)
    )


@pytest.mark.parametrize("token", ["", "not-a-token", None, 42])
async def test_an_unknown_token_answers_3064(accounts: Accounts, token: Any) -> None:
    with pytest.raises(InvalidUserTokenError) as caught:
        await accounts.authenticate(token)
    assert (caught.value.code, caught.value.message) == (3064, "user-token is not valid")
    with pytest.raises(InvalidUserTokenError):
        await accounts.logout(token)


async def test_a_token_with_a_lone_surrogate_is_just_unknown(accounts: Accounts) -> None:
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate("\ud800")


async def test_a_logged_out_token_is_invalid_even_if_it_was_cached(accounts: Accounts) -> None:
    await accounts.register(ALICE)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    await accounts.authenticate(token)  # now cached
    await accounts.logout(token)
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(token)
    with pytest.raises(InvalidUserTokenError):
        await accounts.logout(token)  # twice


async def test_a_token_expires_after_its_ttl(
    accounts: Accounts, store: Store, clock: VirtualClock
) -> None:
    await accounts.register(ALICE)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    await accounts.authenticate(token)  # cached
    clock.set(clock() + TTL - 0.001)
    await accounts.authenticate(token)
    clock.set(clock() + 0.001)
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(token)
    assert await store.tokens() == 0  # purged when found expired
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(token)


async def test_an_expired_token_that_was_never_cached_is_invalid(
    accounts: Accounts, store: Store, clock: VirtualClock
) -> None:
    await accounts.register(ALICE)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    clock.set(clock() + TTL)
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(token)
    assert await store.tokens() == 0


async def test_logging_out_an_expired_token_answers_3064(
    accounts: Accounts, store: Store, clock: VirtualClock
) -> None:
    await accounts.register(ALICE)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    clock.set(clock() + TTL + 1)
    with pytest.raises(InvalidUserTokenError):
        await accounts.logout(token)
    assert await store.tokens() == 0


async def test_every_login_purges_expired_tokens(
    accounts: Accounts, store: Store, clock: VirtualClock
) -> None:
    await accounts.register(ALICE)
    for _ in range(3):
        await accounts.login(ALICE["email"], "s3cret")
    clock.set(clock() + TTL / 2)
    fresh = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    assert await store.tokens() == 4
    clock.set(clock() + TTL / 2)
    await accounts.login(ALICE["email"], "s3cret")
    assert await store.tokens() == 2  # the three old ones went; `fresh` and the new one stay
    await accounts.authenticate(fresh)


async def test_a_known_token_is_answered_from_memory(accounts: Accounts, store: Store) -> None:
    await accounts.register(ALICE)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    await accounts.authenticate(token)
    reads = store.queries
    for _ in range(5):
        await accounts.authenticate(token)
    assert store.queries == reads


@pytest.mark.parametrize("cache_size", [0, 1])
async def test_a_small_cache_still_answers_right(
    store: Store, clock: VirtualClock, cache_size: int
) -> None:
    accounts = Accounts(store, clock=clock, cache_size=cache_size, **FAST)
    await accounts.open()
    await accounts.register(ALICE)
    await accounts.register({"login": "bob", "password": "pw"})
    alice = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    bob = (await accounts.login("bob", "pw"))["user-token"]
    for _ in range(2):
        assert (await accounts.authenticate(alice)).identity == ALICE["email"]
        assert (await accounts.authenticate(bob)).identity == "bob"
    await accounts.logout(alice)
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(alice)
    assert (await accounts.authenticate(bob)).identity == "bob"


async def test_a_logout_racing_an_authenticate_leaves_the_token_unusable(
    accounts: Accounts, store: Store
) -> None:
    await accounts.register(ALICE)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    # The logout commits after authenticate read the token but before it could cache it.
    store.after_query = lambda: accounts.logout(token)
    await accounts.authenticate(token)  # answered from its read, not cached
    with pytest.raises(InvalidUserTokenError):
        await accounts.authenticate(token)


# -- roles -------------------------------------------------------------------------------------


async def test_set_roles_applies_to_existing_and_new_sessions(accounts: Accounts) -> None:
    object_id = (await accounts.register(ALICE))["objectId"]
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    await accounts.authenticate(token)  # cached with the old roles
    user = await accounts.set_roles(object_id, ["Admin", "Editor", "Admin"])
    assert user == User(object_id, ALICE["email"], (AUTHENTICATED_USER, "Admin", "Editor"))
    assert await accounts.authenticate(token) == user
    fresh = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    assert await accounts.authenticate(fresh) == user
    cleared = await accounts.set_roles(object_id, ())
    assert (await accounts.authenticate(token)).roles == (AUTHENTICATED_USER,) == cleared.roles


async def test_set_roles_leaves_other_users_alone(accounts: Accounts) -> None:
    alice = (await accounts.register(ALICE))["objectId"]
    await accounts.register({"login": "bob", "password": "pw"})
    bob_token = (await accounts.login("bob", "pw"))["user-token"]
    await accounts.authenticate(bob_token)
    await accounts.set_roles(alice, ["Admin"])
    assert (await accounts.authenticate(bob_token)).roles == (AUTHENTICATED_USER,)


async def test_a_role_change_racing_an_authenticate_shows_at_the_next_one(
    accounts: Accounts, store: Store
) -> None:
    object_id = (await accounts.register(ALICE))["objectId"]
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    store.after_query = lambda: accounts.set_roles(object_id, ["Admin"])
    assert (await accounts.authenticate(token)).roles == (AUTHENTICATED_USER,)
    assert (await accounts.authenticate(token)).roles == (AUTHENTICATED_USER, "Admin")


async def test_set_roles_of_an_unknown_user(accounts: Accounts) -> None:
    with pytest.raises(UnknownUserError) as caught:
        await accounts.set_roles("NO-SUCH-ID", ["Admin"])
    assert caught.value.code == 3020
    assert "NO-SUCH-ID" in caught.value.message


@pytest.mark.parametrize(
    ("roles", "fragment"),
    [
        ("Admin", "not one string"),
        (["AuthenticatedUser"], "system role"),
        (["Admin", "NotAuthenticatedUser"], "system role"),
        ([""], "non-empty string"),
        ([7], "non-empty string"),
        (["Admin "], "whitespace"),
    ],
)
async def test_invalid_roles_are_refused_and_change_nothing(
    accounts: Accounts, roles: Any, fragment: str
) -> None:
    object_id = (await accounts.register(ALICE))["objectId"]
    await accounts.set_roles(object_id, ["Editor"])
    with pytest.raises(InvalidArgumentError, match=fragment):
        await accounts.set_roles(object_id, roles)
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    assert (await accounts.authenticate(token)).roles == (AUTHENTICATED_USER, "Editor")


async def test_roles_drive_channel_permissions(accounts: Accounts) -> None:
    permissions = Permissions(
        {"default": {"DELETE": "DENY"}, "roles": {"Admin": {"DELETE": "GRANT"}}}
    )
    object_id = (await accounts.register(ALICE))["objectId"]
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    user = await accounts.authenticate(token)
    assert not permissions.allowed("news", user.roles, Permission.DELETE)
    await accounts.set_roles(object_id, ["Admin"])
    user = await accounts.authenticate(token)
    permissions.require("news", user.roles, Permission.DELETE)


# -- restart -----------------------------------------------------------------------------------


async def test_everything_survives_closing_and_reopening_the_store(
    db_path: Path, clock: VirtualClock
) -> None:
    store = Store(db_path)
    await store.open()
    accounts = Accounts(store, clock=clock, token_ttl=TTL, **FAST)
    await accounts.open()
    registered = await accounts.register({**ALICE, "prefs": {"lang": "ja"}})
    kept = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    ended = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    await accounts.logout(ended)
    await accounts.set_roles(registered["objectId"], ["Admin"])
    await store.close()

    store = Store(db_path)
    await store.open()
    try:
        accounts = Accounts(store, clock=clock, token_ttl=TTL, **FAST)
        await accounts.open()  # the tables exist: nothing is lost
        assert await accounts.authenticate(kept) == User(
            registered["objectId"], ALICE["email"], (AUTHENTICATED_USER, "Admin")
        )
        with pytest.raises(InvalidUserTokenError):
            await accounts.authenticate(ended)
        again = await accounts.login("ALICE@example.com", "s3cret")
        assert {k: v for k, v in again.items() if k != "user-token"} == registered
        with pytest.raises(IdentityTakenError):
            await accounts.register(ALICE)
        # Expiry is recorded too: the token dies at its time after the restart.
        clock.set(clock() + TTL)
        with pytest.raises(InvalidUserTokenError):
            await accounts.authenticate(kept)
    finally:
        await store.close()


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "options",
    [
        {"token_ttl": 0},
        {"token_ttl": -1},
        {"token_ttl": math.nan},
        {"token_ttl": math.inf},
        {"scrypt_n": 1},
        {"scrypt_n": 3000},
        {"scrypt_r": 0},
        {"scrypt_p": 0},
        {"max_hashing": 0},
        {"cache_size": -1},
    ],
)
def test_invalid_options_are_refused(db_path: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Accounts(Store(db_path), **options)


async def test_errors_are_broker_errors() -> None:
    for error in (
        InvalidLoginError(),
        IdentityTakenError("email"),
        InvalidUserTokenError(),
        UnknownUserError("x"),
    ):
        assert isinstance(error, BrokerError)


async def test_watchers_hear_of_every_logout_and_role_change(accounts: Accounts) -> None:
    heard: list[str] = []
    stop = accounts.watch(lambda: heard.append("change"))
    object_id = (await accounts.register(ALICE))["objectId"]
    token = (await accounts.login(ALICE["email"], "s3cret"))["user-token"]
    assert heard == []  # registering and logging in change no live session
    await accounts.set_roles(object_id, ["Gold"])
    assert heard == ["change"]
    await accounts.logout(token)
    assert heard == ["change", "change"]
    stop()
    await accounts.set_roles(object_id, [])
    assert len(heard) == 2
