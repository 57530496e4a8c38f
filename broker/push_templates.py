"""Stored push templates: a notification's content, headers and audience, sent by name.

``POST messaging/push/<name>`` with ``{"templateValues": {"name": "Ann"}}``
publishes the template to its channel's devices (policy PUSH), with every
``{key}`` in its message and header values replaced by that value (unknown
keys are left as written). Templates come from the config file
(``[push.templates.<name>]``, written at startup) and the admin endpoints,
and live in the SQLite store's file.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Mapping
from typing import Any, Final

import msgspec

from broker._errors import BrokerError, InvalidArgumentError
from broker._validation import check_channel
from broker.push_options import OS_BITS, PushOptions, check_push_message, parse_push_options
from broker.stores import SqliteStore

__all__ = ["PushTemplate", "PushTemplates", "UnknownTemplateError", "check_template", "from_config"]

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS push_templates (name TEXT PRIMARY KEY, body BLOB NOT NULL)
    WITHOUT ROWID;
"""
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


class UnknownTemplateError(BrokerError):
    def __init__(self, name: str) -> None:
        super().__init__(5042, f"unknown push template {name!r}")


class PushTemplate(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    """A template as the config file and the admin endpoints give it (camelCase in JSON)."""

    message: str
    headers: dict[str, str | int | float | bool | None] = msgspec.field(default_factory=dict)
    channel: str = "default"
    push_broadcast: int | str | None = None
    push_singlecast: list[str] | None = None
    segment_query: str | None = None

    def options(self) -> PushOptions:
        return parse_push_options(
            {
                "publishPolicy": "PUSH",
                "pushBroadcast": self.push_broadcast,
                "pushSinglecast": self.push_singlecast,
                "segmentQuery": self.segment_query,
            }
        )

    def reaches(self, os: str) -> bool:
        broadcast = self.options().broadcast
        return broadcast is None or bool(broadcast & OS_BITS[os])

    def render(self, values: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """The message and headers with each ``{key}`` of `values` substituted."""

        def substitute(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: _text(values[m[1]]) if m[1] in values else m[0], text)

        headers = {k: substitute(v) if isinstance(v, str) else v for k, v in self.headers.items()}
        return substitute(self.message), headers


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def from_config(template: Mapping[str, Any]) -> dict[str, Any]:
    """A template as the config file writes it (snake_case keys) in its JSON shape."""
    return {re.sub(r"_([a-z])", lambda m: m[1].upper(), k): v for k, v in template.items()}


def check_template(name: object, template: object) -> tuple[str, PushTemplate]:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidArgumentError("a template name is 1 to 100 letters, digits, '_', '.', '-'")
    try:
        checked = msgspec.convert(template, PushTemplate)
    except msgspec.ValidationError as exc:
        raise InvalidArgumentError(f"invalid push template {name!r}: {exc}") from None
    check_push_message(checked.message)
    check_channel(checked.channel)
    checked.options()  # the audience fields parse (8002 / 5050 otherwise)
    return name, checked


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(PushTemplate).decode


class PushTemplates:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    async def open(self, configured: Mapping[str, Any] | None = None) -> None:
        """Create the table; write the templates of the config file (replacing same names)."""
        await self._store.ensure_schema(_SCHEMA)
        for name, template in (configured or {}).items():
            await self.put(name, from_config(template))

    async def put(self, name: str, template: object) -> PushTemplate:
        name, checked = check_template(name, template)
        body = _encode(checked)
        await self._store.transact(
            lambda con: con.execute(
                "INSERT OR REPLACE INTO push_templates VALUES (?, ?)", (name, body)
            )
        )
        return checked

    async def delete(self, name: str) -> None:
        removed = await self._store.transact(
            lambda con: con.execute("DELETE FROM push_templates WHERE name = ?", (name,)).rowcount
        )
        if not removed:
            raise UnknownTemplateError(name)

    async def get(self, name: str) -> PushTemplate:
        row = await self._store.query(
            lambda con: con.execute(
                "SELECT body FROM push_templates WHERE name = ?", (name,)
            ).fetchone()
        )
        if row is None:
            raise UnknownTemplateError(name)
        return _decode(row[0])

    async def list(self, os: str | None = None) -> dict[str, PushTemplate]:
        """Every template by name, or those whose audience includes devices of `os`."""
        if os is not None and os not in OS_BITS:
            raise InvalidArgumentError(f"unknown device type {os!r}: one of {', '.join(OS_BITS)}")

        def read(con: sqlite3.Connection) -> list[tuple[str, bytes]]:
            return list(con.execute("SELECT name, body FROM push_templates ORDER BY name"))

        found = {name: _decode(body) for name, body in await self._store.query(read)}
        return {n: t for n, t in found.items() if os is None or t.reaches(os)}
