"""Device registrations for push notifications, kept in the SQLite store's file.

A device registers with the body of ``POST messaging/registrations``
(BACKENDLESS.md, Push notifications)::

    {"deviceToken": "...", "deviceId": "...", "os": "IOS" | "ANDROID" | "WP" | "OSX" | "WEB",
     "osVersion": "17.2", "channels": ["news"], "expiration": 1795613394.626}

and is read back, as Backendless answers ``GET messaging/registrations/<deviceId>``,
as a `Registration`. A push goes to `Devices.audience`: the live devices on
a channel, optionally narrowed by OS bitmask, device ids and a segment selector.

What registering again means (the same ``deviceId``), chosen to match what the
Backendless SDKs assume — Backendless keeps one DeviceRegistration row per
device and channel, and its SDKs offer ``unregisterDevice(channels)`` and a
separate token refresh, so an app calls ``registerDevice`` on every start and
with each new channel:

- the ``registrationId`` stays the same;
- channels are *added*: registering with ``["sports"]`` a device already on
  ``["news"]`` leaves it on both (``unregister(device_id, channels)`` leaves
  channels; a registration with no channel left is removed);
- ``deviceToken``, ``os``, ``osVersion`` and ``expiration`` are replaced by the
  latest call (no ``expiration`` means the registration never expires);
- an expired registration is gone, as if unregistered: registering that device
  again starts afresh, with a new registrationId and only the new channels.

Expired registrations are never answered nor pushed to; `purge_expired` deletes
their rows. Tokens that a push provider reports invalid are dropped with
`remove_tokens`.

Validation, with Backendless's codes: the body is not an object, a field has
the wrong type, ``deviceToken`` is missing or empty, ``os`` is unknown,
``channels`` holds an invalid channel name, a WEB token is not a PushSubscription
JSON → 5005; ``deviceId`` missing or empty → 5011; ``expiration`` not a number
or not in the future → 5004. ``os`` is case-insensitive (stored upper-case), as
the SDKs upper-case the platform name.
"""

from __future__ import annotations

import math
import re
import sqlite3
import time
import uuid
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import Any, Final

import msgspec

from broker._errors import BrokerError, InvalidArgumentError, InvalidChannelError
from broker._timing import MAX_SECONDS
from broker._validation import check_channel
from broker.push_options import OS_BITS
from broker.selectors import compile_selector
from broker.stores import SqliteStore

__all__ = [
    "DEFAULT_CHANNEL",
    "CannotUnregisterError",
    "Devices",
    "InvalidExpirationError",
    "InvalidRegistrationError",
    "MissingDeviceIdError",
    "Registration",
    "UnknownDeviceError",
    "WebPushSubscription",
    "parse_web_token",
]

DEFAULT_CHANNEL: Final = "default"
MAX_DEVICE_ID: Final = 255
MAX_TOKEN: Final = 4096  # APNs 64 hex, FCM ~160, a Web Push subscription a few hundred
_FORBIDDEN_IN_ID = re.compile(r"[/\x00-\x1f\x7f-\x9f]")
_CHUNK = 500  # device ids per `IN (...)`, well under SQLite's parameter limit

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS device_registrations (
    device_id TEXT PRIMARY KEY,
    registration_id TEXT NOT NULL UNIQUE,
    device_token TEXT NOT NULL,
    os TEXT NOT NULL,
    os_bit INTEGER NOT NULL,
    os_version TEXT,
    channels TEXT NOT NULL,
    expiration,
    created REAL NOT NULL,
    updated REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS device_registrations_token ON device_registrations (device_token);
CREATE INDEX IF NOT EXISTS device_registrations_expiration
    ON device_registrations (expiration) WHERE expiration IS NOT NULL;
CREATE TABLE IF NOT EXISTS registration_channels (
    channel TEXT NOT NULL,
    device_id TEXT NOT NULL,
    PRIMARY KEY (channel, device_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS registration_channels_device ON registration_channels (device_id);
"""
# `expiration` has no declared type so that 1795613394 reads back as the int it was.
_COLUMNS: Final = "device_id, device_token, os, os_version, channels, expiration, registration_id"
_LIVE: Final = "(expiration IS NULL OR expiration > ?)"

_encode_channels = msgspec.json.Encoder().encode
_decode_channels = msgspec.json.Decoder(tuple[str, ...]).decode


# -- errors ---------------------------------------------------------------------------------


class UnknownDeviceError(BrokerError):
    """No live registration for this device id (never registered, unregistered or expired)."""

    def __init__(self, message: str) -> None:
        super().__init__(5000, message)


class CannotUnregisterError(BrokerError):
    """Unregistering a device id that has no live registration."""

    def __init__(self, message: str) -> None:
        super().__init__(5001, message)


class InvalidExpirationError(BrokerError):
    """The registration's expiration is not a number, or not in the future."""

    def __init__(self, message: str) -> None:
        super().__init__(5004, message)


class InvalidRegistrationError(BrokerError):
    """The registration body is not valid: shape, types, token, os or channels."""

    def __init__(self, message: str) -> None:
        super().__init__(5005, message)


class MissingDeviceIdError(BrokerError):
    """The registration body has no deviceId (or an empty one)."""

    def __init__(self, message: str = "deviceId is missing") -> None:
        super().__init__(5011, message)


# -- data -----------------------------------------------------------------------------------


class Registration(msgspec.Struct, frozen=True, rename="camel"):
    """One device as Backendless returns it: ``msgspec.json.encode`` gives the wire JSON.

    ``{"deviceId", "deviceToken", "os", "osVersion", "channels", "expiration",
    "registrationId"}``; ``expiration`` is epoch seconds as registered, or null.
    """

    device_id: str
    device_token: str
    os: str
    os_version: str | None
    channels: tuple[str, ...]
    expiration: float | None
    registration_id: str

    @property
    def os_bit(self) -> int:
        """This device's bit in a pushBroadcast mask (IOS=1 ANDROID=2 WP=4 OSX=8 WEB=16)."""
        return OS_BITS[self.os]

    def properties(self) -> dict[str, str | float | None]:
        """What a segment query can test: deviceId, os, osVersion, expiration, registrationId."""
        return {
            "deviceId": self.device_id,
            "os": self.os,
            "osVersion": self.os_version,
            "expiration": self.expiration,
            "registrationId": self.registration_id,
        }


class WebPushSubscription(msgspec.Struct, frozen=True):
    """A browser's PushSubscription, the deviceToken of an ``os: "WEB"`` registration."""

    endpoint: str
    p256dh: str
    auth: str


class _Body(msgspec.Struct, frozen=True):
    device_id: str
    device_token: str
    os: str
    os_version: str | None
    channels: tuple[str, ...]
    expiration: float | None


# -- the registry ---------------------------------------------------------------------------


class Devices:
    """Device registrations on a SqliteStore (opened by its owner; it shares the file).

    ``await Devices(store).open()`` creates the tables when missing. Every method
    reads the time from ``clock`` (epoch seconds) unless given ``now``.
    """

    def __init__(self, store: SqliteStore, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def open(self) -> None:
        await self._store.ensure_schema(_SCHEMA)

    async def register(self, body: Mapping[str, Any]) -> str:
        """Register (or update) the device of a ``POST messaging/registrations`` body.

        Returns the registrationId, the same for every registration of one
        device until it is unregistered or expires.
        """
        now = self._clock()
        checked = _check_body(body, now)
        return await self._store.transact(lambda con: _upsert(con, checked, now))

    async def get(self, device_id: str) -> Registration:
        """The live registration of `device_id`; UnknownDeviceError (5000) when none."""
        now = self._clock()
        if type(device_id) is str:
            row = await self._store.query(
                lambda con: con.execute(
                    f"SELECT {_COLUMNS} FROM device_registrations WHERE device_id = ? AND {_LIVE}",
                    (device_id, now),
                ).fetchone()
            )
            if row is not None:
                return _registration(row)
        raise UnknownDeviceError(f"unknown device id {device_id!r}")

    async def unregister(self, device_id: str, channels: Sequence[str] | None = None) -> None:
        """Remove the registration, or only its `channels` (removed too when none is left).

        CannotUnregisterError (5001) when the device has no live registration.
        Channels the device is not on are ignored.
        """
        now = self._clock()
        if isinstance(channels, str):
            raise InvalidArgumentError("channels must be a sequence of channel names")
        leaving = None if channels is None else tuple(_channel_names(channels, "channels"))
        removed = type(device_id) is str and await self._store.transact(
            lambda con: _unregister(con, device_id, leaving, now)
        )
        if not removed:
            raise CannotUnregisterError(
                f"cannot cancel device registration: unknown device id {device_id!r}"
            )

    async def audience(
        self,
        channel: str,
        *,
        os_mask: int | None = None,
        device_ids: Sequence[str] | None = None,
        segment: str | None = None,
        now: float | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[Registration]:
        """The live devices registered on `channel` that a push goes to, by device id.

        Every one of them; narrowed, when given, to those whose OS bit is in
        `os_mask` (IOS=1 ANDROID=2 WP=4 OSX=8 WEB=16), to exactly `device_ids`
        (an empty sequence selects none), and to those whose `properties()`
        match the `segment` selector — all the given filters apply. Sorted by
        device id; `after` (a device id) and `limit` page through a large audience
        (pass the last device id of one page as `after` of the next).
        """
        check_channel(channel)
        if os_mask is not None and (type(os_mask) is not int or os_mask < 0):
            raise InvalidArgumentError(f"os_mask must be a non-negative int, not {os_mask!r}")
        if limit is not None and (type(limit) is not int or limit < 1):
            raise InvalidArgumentError(f"limit must be a positive int, not {limit!r}")
        if after is not None and type(after) is not str:
            raise InvalidArgumentError("after must be a device id string")
        wanted = None if device_ids is None else sorted(set(_device_ids(device_ids)))
        selector = None if segment is None else compile_selector(segment)
        at = self._clock() if now is None else now
        query = _AudienceQuery(channel, os_mask, wanted, at, limit)
        found: list[Registration] = []
        while limit is None or len(found) < limit:
            page = await self._store.query(partial(_audience_page, query=query, after=after))
            for row in page:
                registration = _registration(row)
                if selector is None or selector.matches(registration.properties()):
                    found.append(registration)
            if limit is None or len(page) < limit:
                break
            after = page[-1][0]
        return found[:limit]

    async def remove_tokens(self, tokens: Iterable[str], *, before: float | None = None) -> int:
        """Drop the registrations holding `tokens`, which a push provider reported invalid.

        With `before` (epoch seconds, e.g. when the failed push was sent), only
        registrations last written at or before that time go: a device that
        registered again since keeps its registration. Returns how many went.
        """
        if isinstance(tokens, str):
            raise InvalidArgumentError("tokens must be an iterable of token strings")
        unique = sorted({token for token in tokens if type(token) is str})
        if not unique:
            return 0
        return await self._store.transact(lambda con: _remove_tokens(con, unique, before))

    async def purge_expired(self, now: float | None = None) -> int:
        """Delete the rows of expired registrations (they are already invisible); how many."""
        at = self._clock() if now is None else now
        return await self._store.transact(lambda con: _purge_expired(con, at))


# -- validation -----------------------------------------------------------------------------


def _check_body(body: object, now: float) -> _Body:
    if not isinstance(body, Mapping):
        raise InvalidRegistrationError("the device registration must be a JSON object")
    device_id = body.get("deviceId")
    if device_id is None or (type(device_id) is str and not device_id.strip()):
        raise MissingDeviceIdError()
    if type(device_id) is not str:
        raise InvalidRegistrationError("deviceId must be a string")
    if len(device_id) > MAX_DEVICE_ID or _FORBIDDEN_IN_ID.search(device_id):
        raise InvalidRegistrationError(
            f"deviceId must be at most {MAX_DEVICE_ID} characters, without '/' or control "
            "characters"
        )
    os = body.get("os")
    if type(os) is not str or os.upper() not in OS_BITS:
        raise InvalidRegistrationError(
            f"os must be one of {', '.join(OS_BITS)}, not {os!r}",
        )
    os = os.upper()
    token = body.get("deviceToken")
    if type(token) is not str or not token.strip():
        raise InvalidRegistrationError("deviceToken must be a non-empty string")
    if len(token) > MAX_TOKEN:
        raise InvalidRegistrationError(f"deviceToken is longer than {MAX_TOKEN} characters")
    if os == "WEB":
        parse_web_token(token)
    os_version = body.get("osVersion")
    if os_version is not None and type(os_version) is not str:
        raise InvalidRegistrationError("osVersion must be a string")
    channels = body.get("channels")
    if channels is None:
        channels = []
    if not isinstance(channels, list | tuple):
        raise InvalidRegistrationError("channels must be a list of channel names")
    try:
        names = tuple(dict.fromkeys(_channel_names(channels, "channels")))
    except InvalidChannelError as exc:
        raise InvalidRegistrationError(exc.message) from None
    return _Body(
        device_id,
        token,
        os,
        os_version,
        names or (DEFAULT_CHANNEL,),
        _check_expiration(body.get("expiration"), now),
    )


def _check_expiration(expiration: object, now: float) -> float | None:
    if expiration is None:
        return None
    if isinstance(expiration, bool) or not isinstance(expiration, int | float):
        raise InvalidExpirationError(
            "expiration must be a number: epoch seconds, fractions allowed"
        )
    if not math.isfinite(expiration) or expiration <= now:
        raise InvalidExpirationError(f"expiration {expiration!r} is not in the future")
    if expiration > now + MAX_SECONDS:
        raise InvalidExpirationError(f"expiration {expiration!r} is more than a century away")
    return expiration


def _channel_names(channels: Iterable[object], field: str) -> list[str]:
    names = []
    for name in channels:
        if type(name) is not str:
            raise InvalidChannelError(f"{field} must hold channel names (strings), not {name!r}")
        names.append(check_channel(name))
    return names


def _device_ids(device_ids: Sequence[str]) -> list[str]:
    if isinstance(device_ids, str) or not all(type(d) is str for d in device_ids):
        raise InvalidArgumentError("device_ids must be a sequence of device id strings")
    return list(device_ids)


def parse_web_token(token: str) -> WebPushSubscription:
    """The PushSubscription held by a WEB deviceToken: ``{"endpoint", "keys": {"p256dh", "auth"}}``.

    That is what ``JSON.stringify(subscription)`` gives in the browser (other
    keys, such as expirationTime, are ignored). InvalidRegistrationError (5005)
    when the token is not such JSON or the endpoint is not an http(s) URL.
    """
    try:
        data = msgspec.json.decode(token)
    except msgspec.DecodeError:
        raise InvalidRegistrationError(
            "a WEB deviceToken must be the browser's PushSubscription as JSON"
        ) from None
    keys = data.get("keys") if isinstance(data, dict) else None
    endpoint = data.get("endpoint") if isinstance(data, dict) else None
    if (
        type(endpoint) is not str
        or not endpoint.startswith(("https://", "http://"))
        or not isinstance(keys, dict)
        or not all(type(keys.get(k)) is str and keys[k] for k in ("p256dh", "auth"))
    ):
        raise InvalidRegistrationError(
            'a WEB deviceToken must be PushSubscription JSON: {"endpoint": "https://...", '
            '"keys": {"p256dh": "...", "auth": "..."}}'
        )
    return WebPushSubscription(endpoint, keys["p256dh"], keys["auth"])


# -- SQL, run on the store's worker threads -------------------------------------------------


def _registration(row: tuple[Any, ...]) -> Registration:
    device_id, token, os, os_version, channels, expiration, registration_id = row
    return Registration(
        device_id, token, os, os_version, _decode_channels(channels), expiration, registration_id
    )


def _upsert(con: sqlite3.Connection, body: _Body, now: float) -> str:
    row = con.execute(
        f"SELECT registration_id, channels, created FROM device_registrations "
        f"WHERE device_id = ? AND {_LIVE}",
        (body.device_id, now),
    ).fetchone()
    if row is None:  # new, or expired: start afresh
        _delete(con, [body.device_id])
        registration_id = str(uuid.uuid4()).upper()
        channels, created = body.channels, now
    else:
        registration_id, stored, created = row
        channels = tuple(dict.fromkeys((*_decode_channels(stored), *body.channels)))
    con.execute(
        "INSERT OR REPLACE INTO device_registrations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            body.device_id,
            registration_id,
            body.device_token,
            body.os,
            OS_BITS[body.os],
            body.os_version,
            _encode_channels(channels),
            body.expiration,
            created,
            now,
        ),
    )
    con.executemany(
        "INSERT OR IGNORE INTO registration_channels VALUES (?, ?)",
        [(channel, body.device_id) for channel in body.channels],
    )
    return str(registration_id)


def _unregister(
    con: sqlite3.Connection, device_id: str, leaving: tuple[str, ...] | None, now: float
) -> bool:
    row = con.execute(
        f"SELECT channels FROM device_registrations WHERE device_id = ? AND {_LIVE}",
        (device_id, now),
    ).fetchone()
    if row is None:
        _delete(con, [device_id])  # an expired row, if any: it is gone already
        return False
    remaining: tuple[str, ...] = ()
    if leaving is not None:
        remaining = tuple(c for c in _decode_channels(row[0]) if c not in leaving)
    if not remaining:
        _delete(con, [device_id])
        return True
    con.execute(
        "UPDATE device_registrations SET channels = ?, updated = ? WHERE device_id = ?",
        (_encode_channels(remaining), now, device_id),
    )
    con.executemany(
        "DELETE FROM registration_channels WHERE channel = ? AND device_id = ?",
        [(channel, device_id) for channel in leaving or ()],
    )
    return True


def _delete(con: sqlite3.Connection, device_ids: Sequence[str]) -> None:
    pairs = [(device_id,) for device_id in device_ids]
    con.executemany("DELETE FROM registration_channels WHERE device_id = ?", pairs)
    con.executemany("DELETE FROM device_registrations WHERE device_id = ?", pairs)


class _AudienceQuery(msgspec.Struct, frozen=True):
    channel: str
    os_mask: int | None
    wanted: list[str] | None  # sorted device ids
    now: float
    limit: int | None


def _audience_page(
    con: sqlite3.Connection, *, query: _AudienceQuery, after: str | None
) -> list[tuple[Any, ...]]:
    sql = (
        f"SELECT r.{_COLUMNS.replace(', ', ', r.')} FROM registration_channels AS c "
        "JOIN device_registrations AS r ON r.device_id = c.device_id "
        "WHERE c.channel = ? AND (r.expiration IS NULL OR r.expiration > ?)"
    )
    params: list[Any] = [query.channel, query.now]
    if query.os_mask is not None:
        sql += " AND (r.os_bit & ?) != 0"
        params.append(query.os_mask)
    if query.wanted is None:
        if after is not None:
            sql += " AND c.device_id > ?"
            params.append(after)
        return _fetch(con, sql, params, query.limit)
    wanted = query.wanted[0 if after is None else bisect_right(query.wanted, after) :]
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), _CHUNK):  # sorted, so the chunks come in order
        chunk = wanted[start : start + _CHUNK]
        in_chunk = f"{sql} AND c.device_id IN ({', '.join('?' * len(chunk))})"
        rest = None if query.limit is None else query.limit - len(rows)
        rows += _fetch(con, in_chunk, [*params, *chunk], rest)
        if query.limit is not None and len(rows) >= query.limit:
            break
    return rows


def _fetch(
    con: sqlite3.Connection, sql: str, params: list[Any], limit: int | None
) -> list[tuple[Any, ...]]:
    sql += " ORDER BY c.device_id"
    if limit is not None:
        sql += " LIMIT ?"
        params = [*params, limit]
    return con.execute(sql, params).fetchall()


def _remove_tokens(con: sqlite3.Connection, tokens: list[str], before: float | None) -> int:
    doomed: list[str] = []
    for start in range(0, len(tokens), _CHUNK):
        chunk = tokens[start : start + _CHUNK]
        sql = (
            "SELECT device_id FROM device_registrations "
            f"WHERE device_token IN ({', '.join('?' * len(chunk))})"
        )
        params: list[Any] = list(chunk)
        if before is not None:
            sql += " AND updated <= ?"
            params.append(before)
        doomed += [row[0] for row in con.execute(sql, params)]
    _delete(con, doomed)
    return len(doomed)


def _purge_expired(con: sqlite3.Connection, now: float) -> int:
    doomed = [
        row[0]
        for row in con.execute(
            "SELECT device_id FROM device_registrations WHERE expiration <= ?", (now,)
        )
    ]
    _delete(con, doomed)
    return len(doomed)
