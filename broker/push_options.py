"""The push fields of a publish: who gets a message besides (or instead of) the subscribers.

Pure parsing and validation of the Backendless publish body's push fields
(BACKENDLESS.md, Publish and Push notifications)::

    {"publishPolicy": "PUBSUB" | "PUSH" | "BOTH",        # default PUBSUB
     "pushPolicy": "ONLY" | "ALSO",                      # legacy: ONLY is PUSH, ALSO is BOTH
     "pushBroadcast": 3 | "FOR_IOS|FOR_ANDROID" | "ALL", # which OSes, on the channel's devices
     "pushSinglecast": ["deviceId", ...],                # exactly these devices
     "segmentQuery": "osVersion = '17'"}                 # a selector over device properties

Choices, where Backendless leaves room:

- Names are case-insensitive (``"push"`` is PUSH), as the Backendless SDKs
  upper-case what they are given. ``publishPolicy`` wins over the legacy
  ``pushPolicy`` when both are present; both are validated.
- ``pushBroadcast`` is a bitmask, IOS=1 ANDROID=2 WP=4 OSX=8 WEB=16, or a string
  of names joined by ``|`` (or ``,``; spaces allowed), each name with or
  without its ``FOR_`` prefix: ``"FOR_IOS|FOR_ANDROID"``, ``"ios | web"``.
  ``ALL`` is 15, IOS|ANDROID|WP|OSX, as in every Backendless SDK, so a Backendless
  app's "all" and the number 15 it sends mean the same devices; WEB (Tidings's
  extension) is reached by naming it (``"ALL|FOR_WEB"``, 31), or by leaving
  ``pushBroadcast`` out, which targets every device on the channel, web
  included. 0 and null mean "not set", the way a delivered message spells it.
- ``pushSinglecast`` ``[]`` targets no device at all (never "everyone");
  duplicates are dropped, order kept.
- Push fields are kept on a PUBSUB publish but reach no device: only
  ``publishPolicy`` PUSH or BOTH sends notifications.
- A message that goes to devices must be a string (5041).

Bad values raise InvalidArgumentError (8002), a bad segment query SelectorError
(5050), a non-string push message PushMessageError (5041).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

import msgspec

from broker._errors import BrokerError, InvalidArgumentError
from broker.selectors import compile_selector

__all__ = [
    "ALL",
    "ALL_OS",
    "OS_BITS",
    "PublishPolicy",
    "PushMessageError",
    "PushOptions",
    "check_push_message",
    "parse_push_options",
]

# One bit per operating system a device registers with (devices.py uses the same).
OS_BITS: Final[Mapping[str, int]] = {"IOS": 1, "ANDROID": 2, "WP": 4, "OSX": 8, "WEB": 16}
ALL: Final = 15  # Backendless's ALL: IOS | ANDROID | WP | OSX (not WEB, a Tidings extension)
ALL_OS: Final = 31  # every bit Tidings knows
_BROADCAST_NAMES: Final[Mapping[str, int]] = {**OS_BITS, "ALL": ALL}
_SEPARATORS = re.compile(r"[|,]")
_FOR = "FOR_"


class PushMessageError(BrokerError):
    """A message that goes to devices is not a string."""

    def __init__(self, message: str = "a push message must be a string") -> None:
        super().__init__(5041, message)


class PublishPolicy(StrEnum):
    PUBSUB = "PUBSUB"  # subscribers only (the default)
    PUSH = "PUSH"  # registered devices only
    BOTH = "BOTH"  # subscribers and devices


_LEGACY_POLICIES: Final[Mapping[str, PublishPolicy]] = {
    "ONLY": PublishPolicy.PUSH,
    "ALSO": PublishPolicy.BOTH,
}


class PushOptions(msgspec.Struct, frozen=True):
    """Where a publish goes: subscribers, devices, or both; and which devices.

    ``broadcast`` None means every OS; ``singlecast`` None means every device on
    the channel (a tuple, even empty, means exactly those); ``segment_query`` is
    a selector over the device's properties. The constructor checks what it is
    given (8002), so options built in Python are as sound as parsed ones; it
    takes the policy as a PublishPolicy or its name (``"PUSH"``).
    """

    policy: PublishPolicy = PublishPolicy.PUBSUB
    broadcast: int | None = None
    singlecast: tuple[str, ...] | None = None
    segment_query: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.policy, PublishPolicy):
            if type(self.policy) is not str or self.policy not in PublishPolicy.__members__:
                raise InvalidArgumentError(
                    f"policy must be PUBSUB, PUSH or BOTH, not {self.policy!r}"
                )
            msgspec.structs.force_setattr(self, "policy", PublishPolicy(self.policy))
        if self.broadcast is not None:
            _check_mask(self.broadcast)
        if self.singlecast is not None and (
            type(self.singlecast) is not tuple
            or not all(type(device) is str and device for device in self.singlecast)
        ):
            raise InvalidArgumentError("singlecast must be a tuple of non-empty device id strings")
        if self.segment_query is not None:
            if type(self.segment_query) is not str:
                raise InvalidArgumentError("segment_query must be a string")
            compile_selector(self.segment_query)  # SelectorError (5050) when invalid

    @property
    def to_pubsub(self) -> bool:
        """The message goes to the channel's subscribers."""
        return self.policy is not PublishPolicy.PUSH

    @property
    def to_push(self) -> bool:
        """The message goes to devices registered on the channel."""
        return self.policy is not PublishPolicy.PUBSUB

    def to_wire(self) -> dict[str, Any]:
        """The delivered-message fields: ``publishPolicy``, ``pushBroadcast``, ``pushSinglecast``.

        Null when not set, as in a Backendless delivered message; a pub/sub-only
        message (the default policy) reads ``"publishPolicy": null``.
        """
        return {
            "publishPolicy": None if self.policy is PublishPolicy.PUBSUB else self.policy.value,
            "pushBroadcast": self.broadcast,
            "pushSinglecast": None if self.singlecast is None else list(self.singlecast),
        }


def parse_push_options(body: Mapping[str, Any]) -> PushOptions:
    """The push fields of a publish body, checked; other keys are ignored.

    When the policy sends to devices and the body holds a ``message``, that
    message must be a string (5041).
    """
    if not isinstance(body, Mapping):
        raise InvalidArgumentError("the publish body must be a JSON object")
    policy = _policy(body.get("publishPolicy"), body.get("pushPolicy"))
    broadcast = _broadcast(body.get("pushBroadcast"))
    singlecast = _singlecast(body.get("pushSinglecast"))
    segment_query = _segment_query(body.get("segmentQuery"))
    if policy is not PublishPolicy.PUBSUB and "message" in body:
        check_push_message(body["message"])
    return PushOptions(policy, broadcast, singlecast, segment_query)


def check_push_message(message: object) -> str:
    """A message that goes to devices: a string, else PushMessageError (5041)."""
    if type(message) is not str:
        raise PushMessageError(f"a push message must be a string, not {_json_type(message)}")
    return message


def _policy(publish_policy: object, push_policy: object) -> PublishPolicy:
    policy = PublishPolicy.PUBSUB
    if push_policy is not None:
        name = _name(push_policy, "pushPolicy")
        legacy = _LEGACY_POLICIES.get(name)
        if legacy is None:
            raise InvalidArgumentError(f"pushPolicy must be ONLY or ALSO, not {push_policy!r}")
        policy = legacy
    if publish_policy is not None:
        name = _name(publish_policy, "publishPolicy")
        if name not in PublishPolicy.__members__:
            raise InvalidArgumentError(
                f"publishPolicy must be PUBSUB, PUSH or BOTH, not {publish_policy!r}"
            )
        policy = PublishPolicy(name)
    return policy


def _name(value: object, field: str) -> str:
    if type(value) is not str:
        raise InvalidArgumentError(f"{field} must be a string, not {_json_type(value)}")
    return value.strip().upper()


def _broadcast(value: object) -> int | None:
    if value is None:
        return None
    if type(value) is int:
        return None if value == 0 else _check_mask(value)
    if type(value) is not str:
        raise InvalidArgumentError(
            f"pushBroadcast must be a bitmask (1..{ALL_OS}) or names such as "
            f"'FOR_IOS|FOR_ANDROID', not {_json_type(value)}"
        )
    return _mask_of(value.upper(), value)


def _mask_of(names: str, original: str) -> int:
    mask = 0
    for part in _SEPARATORS.split(names):
        name = part.strip()
        bits = _BROADCAST_NAMES.get(name.removeprefix(_FOR))
        if bits is None:
            known = ", ".join(f"FOR_{os}" for os in OS_BITS)
            raise InvalidArgumentError(
                f"pushBroadcast {original!r}: unknown name {name!r}; use {known} or ALL, "
                "joined by '|'"
            )
        mask |= bits
    return mask


def _check_mask(mask: int) -> int:
    if type(mask) is not int or not 1 <= mask <= ALL_OS:
        raise InvalidArgumentError(
            f"pushBroadcast must be a bitmask from 1 to {ALL_OS} "
            f"(IOS=1 ANDROID=2 WP=4 OSX=8 WEB=16), not {mask!r}"
        )
    return mask


def _singlecast(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise InvalidArgumentError(
            f"pushSinglecast must be a list of device ids, not {_json_type(value)}"
        )
    return tuple(dict.fromkeys(_device_id(item) for item in value))


def _device_id(item: object) -> str:
    if type(item) is not str or not item:
        raise InvalidArgumentError(
            f"pushSinglecast holds {item!r}: device ids are non-empty strings"
        )
    return item


def _segment_query(value: object) -> str | None:
    if value is None:
        return None
    if type(value) is not str:
        raise InvalidArgumentError(f"segmentQuery must be a string, not {_json_type(value)}")
    if not value.strip():
        return None
    compile_selector(value)  # SelectorError (5050), naming the position
    return value


def _json_type(value: object) -> str:
    """How a JSON client would name the type of `value`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "an array"
    return type(value).__name__
