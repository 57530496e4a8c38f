"""Push providers: FCM (ANDROID), APNs (IOS, OSX) and Web Push (WEB).

Each implements `broker.notifications.PushProvider` over its real protocol.
`build_providers` makes those that are configured, keyed by the OS they
serve; an OS without one is reported by the outbox as having no provider.

    [push.fcm]       # see fcm.py, apns.py, webpush.py for each table's keys
    [push.apns]
    [push.webpush]
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import msgspec

from broker.notifications import PushProvider

from ._common import Clock
from .apns import ApnsProvider, ApnsSettings
from .fcm import FcmProvider, FcmSettings
from .webpush import WebPushProvider, WebPushSettings

__all__ = [
    "ApnsProvider",
    "ApnsSettings",
    "FcmProvider",
    "FcmSettings",
    "PushSettings",
    "WebPushProvider",
    "WebPushSettings",
    "build_providers",
    "close_providers",
]


class PushSettings(msgspec.Struct, forbid_unknown_fields=True):
    """The ``[push]`` tables; a provider whose table is absent or empty is not configured."""

    fcm: FcmSettings = msgspec.field(default_factory=FcmSettings)
    apns: ApnsSettings = msgspec.field(default_factory=ApnsSettings)
    webpush: WebPushSettings = msgspec.field(default_factory=WebPushSettings)


def build_providers(settings: PushSettings, *, clock: Clock = time.time) -> dict[str, PushProvider]:
    """The configured providers by OS name: IOS and OSX share one APNs provider.

    Raises ValueError (or OSError for an unreadable key file) when a provider is
    configured but its settings or keys are wrong: better at startup than on
    the first push.
    """
    providers: dict[str, PushProvider] = {}
    if settings.apns.configured:
        apns = ApnsProvider(settings.apns, clock=clock)
        providers["IOS"] = providers["OSX"] = apns
    if settings.fcm.configured:
        providers["ANDROID"] = FcmProvider(settings.fcm, clock=clock)
    if settings.webpush.configured:
        providers["WEB"] = WebPushProvider(settings.webpush, clock=clock)
    return providers


async def close_providers(providers: Mapping[str, PushProvider]) -> None:
    """Close each provider once (IOS and OSX map to the same one)."""
    unique = {id(provider): provider for provider in providers.values()}
    for provider in unique.values():
        await provider.aclose()
