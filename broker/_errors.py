"""One exception tree: every failure the broker reports is a BrokerError with a code.

Codes follow Backendless where it has one (see BACKENDLESS.md); Tidings adds
5050 (invalid selector), 5051 (slow consumer), 5052 (too large), 5053 (too many
scheduled messages) and 5090 (the store failed).
"""

from __future__ import annotations


class BrokerError(Exception):
    """A failure with a Backendless-style numeric code and a human-readable message."""

    code: int
    message: str

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


class SelectorError(BrokerError):
    """An invalid selector; ``position`` is the 0-based character index of the problem."""

    position: int

    def __init__(self, message: str, position: int) -> None:
        super().__init__(5050, f"invalid selector at position {position}: {message}")
        self.position = position


class SlowConsumerError(BrokerError):
    """A subscription was closed because its queue overflowed (overflow="close")."""

    def __init__(self, message: str = "subscription closed: its queue overflowed") -> None:
        super().__init__(5051, message)


class InvalidChannelError(BrokerError):
    """A channel name that is empty, too long, reserved or holds forbidden characters."""

    def __init__(self, message: str) -> None:
        super().__init__(5044, message)


class ChannelNotFoundError(BrokerError):
    """The channel does not exist, or was deleted while subscribed."""

    def __init__(self, message: str) -> None:
        super().__init__(5010, message)


class MessageTooLargeError(BrokerError):
    """The encoded message is over the broker's size limit."""

    def __init__(self, message: str) -> None:
        super().__init__(5052, message)


class InvalidArgumentError(BrokerError, ValueError):
    """An argument of the wrong type or shape: headers, payload, publisher id, options."""

    def __init__(self, message: str) -> None:
        super().__init__(8002, message)


class InvalidPublishTimeError(BrokerError):
    """An invalid delivery time (delay / publish_at)."""

    def __init__(self, message: str) -> None:
        super().__init__(5030, message)


class InvalidRepeatError(BrokerError):
    """An invalid repeat_every."""

    def __init__(self, message: str) -> None:
        super().__init__(5031, message)


class NotCancellableError(BrokerError):
    """The message is not scheduled, so it cannot be cancelled."""

    def __init__(self, message: str) -> None:
        super().__init__(5040, message)


class InvalidRepeatExpiryError(BrokerError):
    """An invalid repeat_expires_at: naive, in the past, or before the first delivery."""

    def __init__(self, message: str) -> None:
        super().__init__(5003, message)


class SchedulerFullError(BrokerError):
    """The broker already holds its maximum number of scheduled messages."""

    def __init__(self, message: str) -> None:
        super().__init__(5053, message)


class StoreError(BrokerError):
    """The store cannot be opened or written: in use by another process, newer schema, disk."""

    def __init__(self, message: str) -> None:
        super().__init__(5090, message)
