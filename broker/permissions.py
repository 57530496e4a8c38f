"""Channel permissions: who may publish to, subscribe to, or delete a channel.

Pure: no I/O. The caller loads the configuration (a TOML table, JSON, or the
admin API), hands it over, and persists `Permissions.config` if it changes it
at runtime.

Model (BACKENDLESS.md, "Users and permissions"): three permissions, PUBLISH,
SUBSCRIBE and DELETE (deleting the channel); each is GRANT, DENY or INHERIT
for a role, either app-wide or on one channel, under an app-wide default per
permission. The default is GRANT for every permission unless configured
(DESIGN.md: "Channel permissions default to GRANT for every role"). INHERIT
means "no rule here, ask the next level"; it is never stored.

Roles: a caller that is not logged in has ``NotAuthenticatedUser``; a logged-in
user has ``AuthenticatedUser`` and any custom roles an admin gave them (see
broker.accounts). The checks take the caller's roles as given.

Resolution, for one channel, one permission and the caller's roles: the levels
below are asked in order, and the first level where at least one of the
caller's roles has a rule (GRANT or DENY) decides; within that level a DENY from
any role beats a GRANT from another.

1. the channel's rules for the caller's custom roles
2. the channel's rules for the caller's system roles (NotAuthenticatedUser, AuthenticatedUser)
3. the app-wide rules for the caller's custom roles
4. the app-wide rules for the caller's system roles
5. the app-wide default for the permission

So each role's most specific rule counts (a channel rule before an app-wide
one), and custom roles come before the system roles at the same level, as in
Backendless's permission hierarchy: an ``Admin`` GRANT on a channel overrides
the ``AuthenticatedUser`` DENY that every logged-in user also carries, while
two custom roles that disagree on the same level resolve to DENY (the safe
side). A channel rule for a system role still beats an app-wide rule for a
custom role: the channel is more specific than the role.

Denials raise PermissionDeniedError subclasses: 5007 for PUBLISH and 5008 for
SUBSCRIBE (Backendless's codes), and 5007 for DELETE too — Backendless has no
code of its own for a refused channel delete, and 5007 ("no permission to
publish") is the one for changing a channel rather than reading it; both
answer HTTP 403.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

import msgspec

from broker._errors import BrokerError, InvalidArgumentError
from broker._validation import check_channel

__all__ = [
    "AUTHENTICATED_USER",
    "NOT_AUTHENTICATED_USER",
    "SYSTEM_ROLES",
    "DeleteDeniedError",
    "Permission",
    "PermissionDeniedError",
    "Permissions",
    "PermissionsConfig",
    "PermissionsConfigError",
    "PublishDeniedError",
    "Rule",
    "SubscribeDeniedError",
    "check_role",
]

NOT_AUTHENTICATED_USER = "NotAuthenticatedUser"
AUTHENTICATED_USER = "AuthenticatedUser"
SYSTEM_ROLES = frozenset({NOT_AUTHENTICATED_USER, AUTHENTICATED_USER})
MAX_ROLE_NAME = 255
_ROLE_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class Permission(StrEnum):
    PUBLISH = "PUBLISH"
    SUBSCRIBE = "SUBSCRIBE"
    DELETE = "DELETE"


class Rule(StrEnum):
    GRANT = "GRANT"
    DENY = "DENY"
    INHERIT = "INHERIT"


Rules = dict[Permission, Rule]


# -- errors ------------------------------------------------------------------------------------


class PermissionDeniedError(BrokerError):
    """The caller's roles do not allow `permission` on `channel` (HTTP 403)."""

    permission: ClassVar[Permission]
    _code: ClassVar[int]
    _action: ClassVar[str]

    channel: str

    def __init__(self, channel: str) -> None:
        super().__init__(self._code, f"user has no permission to {self._action} {channel!r}")
        self.channel = channel


class PublishDeniedError(PermissionDeniedError):
    permission = Permission.PUBLISH
    _code = 5007
    _action = "publish to channel"


class SubscribeDeniedError(PermissionDeniedError):
    permission = Permission.SUBSCRIBE
    _code = 5008
    _action = "subscribe to channel"


class DeleteDeniedError(PermissionDeniedError):
    """Refused channel delete: 5007, the code for changing a channel (Backendless has none)."""

    permission = Permission.DELETE
    _code = 5007
    _action = "delete channel"


_DENIED: dict[Permission, type[PermissionDeniedError]] = {
    error.permission: error
    for error in (PublishDeniedError, SubscribeDeniedError, DeleteDeniedError)
}


class PermissionsConfigError(InvalidArgumentError):
    """A permissions configuration that does not have the documented shape (code 8002)."""

    where: str

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"invalid permissions at {where}: {problem}")
        self.where = where


# -- configuration -----------------------------------------------------------------------------


class PermissionsConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The configuration as data; `msgspec.to_builtins(config)` gives the dict shape back.

    {"default": {"PUBLISH": "GRANT", ...},                       # app-wide, per permission
     "roles": {"Admin": {"DELETE": "GRANT"}},                   # app-wide, per role
     "channels": {"news": {"NotAuthenticatedUser": {"PUBLISH": "DENY"}}}}   # per channel and role

    Every table is optional; permission and rule names are case-insensitive.
    """

    default: Rules = msgspec.field(default_factory=dict)
    roles: dict[str, Rules] = msgspec.field(default_factory=dict)
    channels: dict[str, dict[str, Rules]] = msgspec.field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PermissionsConfig:
        """Validate a TOML-like table; PermissionsConfigError names the first bad place."""
        table = _table(data, "permissions")
        for key in table:
            if key not in ("default", "roles", "channels"):
                raise PermissionsConfigError(
                    "permissions", f"unknown key {key!r} (expected default, roles or channels)"
                )
        default = _rules(table.get("default", {}), "default")
        for permission, rule in default.items():
            if rule is Rule.INHERIT:
                raise PermissionsConfigError(
                    f"default.{permission}",
                    "the default has nothing to inherit from: GRANT or DENY",
                )
        roles = {
            _role(role, "roles"): _rules(rules, f"roles.{role}")
            for role, rules in _table(table.get("roles", {}), "roles").items()
        }
        channels: dict[str, dict[str, Rules]] = {}
        for channel, per_role in _table(table.get("channels", {}), "channels").items():
            try:
                check_channel(channel)
            except BrokerError as exc:
                raise PermissionsConfigError("channels", exc.message) from None
            channels[channel] = {
                _role(role, f"channels.{channel}"): _rules(rules, f"channels.{channel}.{role}")
                for role, rules in _table(per_role, f"channels.{channel}").items()
            }
        return cls(default=default, roles=roles, channels=channels)


def _table(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PermissionsConfigError(where, f"expected a table, got {type(value).__name__}")
    return value


def _role(name: object, where: str) -> str:
    try:
        return check_role(name)
    except InvalidArgumentError as exc:
        raise PermissionsConfigError(where, exc.message) from None


def _rules(value: object, where: str) -> Rules:
    rules: Rules = {}
    for name, rule in _table(value, where).items():
        permission = _parse(Permission, name)
        if permission is None:
            raise PermissionsConfigError(where, _not_a(Permission, name))
        parsed = _parse(Rule, rule)
        if parsed is None:
            raise PermissionsConfigError(f"{where}.{permission}", _not_a(Rule, rule))
        rules[permission] = parsed
    return rules


E = TypeVar("E", Permission, Rule)


def _parse(kind: type[E], value: object) -> E | None:
    """`value` as a member of `kind`, case-insensitively; None if it is not one."""
    if isinstance(value, str):
        try:
            return kind(value.upper())
        except ValueError:
            pass
    return None


def _not_a(kind: type[E], value: object) -> str:
    expected = ", ".join(member.value for member in kind)
    return f"{value!r} is not a {kind.__name__.lower()} (expected one of {expected})"


def _arg(kind: type[E], value: object) -> E:
    parsed = _parse(kind, value)
    if parsed is None:
        raise InvalidArgumentError(_not_a(kind, value))
    return parsed


def check_role(name: object) -> str:
    """A role name: a non-empty string, at most 255 characters, no control characters,
    no leading or trailing whitespace. InvalidArgumentError (8002) otherwise."""
    if not isinstance(name, str) or not name:
        raise InvalidArgumentError("a role name must be a non-empty string")
    if len(name) > MAX_ROLE_NAME:
        raise InvalidArgumentError(f"role name is longer than {MAX_ROLE_NAME} characters")
    if name != name.strip() or _ROLE_FORBIDDEN.search(name):
        raise InvalidArgumentError(
            f"role name {name!r} has leading or trailing whitespace or control characters"
        )
    return name


# -- the checks --------------------------------------------------------------------------------


class Permissions:
    """The permission rules in force; `allowed` / `require` answer, the setters change them."""

    def __init__(self, config: PermissionsConfig | Mapping[str, Any] | None = None) -> None:
        self._default: dict[Permission, bool] = {}
        self._roles: dict[str, dict[Permission, bool]] = {}
        self._channels: dict[str, dict[str, dict[Permission, bool]]] = {}
        self.replace(config)

    @classmethod
    def from_config(cls, config: PermissionsConfig | Mapping[str, Any] | None) -> Permissions:
        """The same as `Permissions(config)`: for a server's `[permissions]` table."""
        return cls(config)

    # -- reading -----------------------------------------------------------------------------

    def allowed(self, channel: str, roles: Iterable[str], permission: Permission) -> bool:
        """Whether a caller with `roles` may use `permission` on `channel` (see module doc)."""
        roles = tuple(roles)
        per_channel = self._channels.get(channel)
        if per_channel is not None:
            verdict = _decide(per_channel, roles, permission)
            if verdict is not None:
                return verdict
        verdict = _decide(self._roles, roles, permission)
        if verdict is not None:
            return verdict
        return self._default[permission]

    def require(self, channel: str, roles: Iterable[str], permission: Permission) -> None:
        """Return if allowed; else raise PublishDeniedError (5007), SubscribeDeniedError (5008)
        or DeleteDeniedError (5007), all PermissionDeniedError."""
        if not self.allowed(channel, roles, permission):
            raise _DENIED[permission](channel)

    @property
    def config(self) -> PermissionsConfig:
        """A snapshot of the rules in force: every default listed, no INHERIT entries."""
        return PermissionsConfig(
            default={
                permission: _as_rule(granted) for permission, granted in self._default.items()
            },
            roles={role: _as_rules(rules) for role, rules in self._roles.items()},
            channels={
                channel: {role: _as_rules(rules) for role, rules in per_role.items()}
                for channel, per_role in self._channels.items()
            },
        )

    # -- changing (admin) --------------------------------------------------------------------

    def replace(self, config: PermissionsConfig | Mapping[str, Any] | None) -> None:
        """Put a whole configuration in force; validated first, so a bad one changes nothing."""
        data: Mapping[str, Any]
        if config is None:
            data = {}
        elif isinstance(config, PermissionsConfig):
            data = msgspec.to_builtins(config)
        else:
            data = config
        valid = PermissionsConfig.from_dict(data)
        default = {permission: True for permission in Permission}
        default.update((p, rule is Rule.GRANT) for p, rule in valid.default.items())
        roles: dict[str, dict[Permission, bool]] = {}
        for role, rules in valid.roles.items():
            _store(roles, role, rules)
        channels: dict[str, dict[str, dict[Permission, bool]]] = {}
        for channel, per_role in valid.channels.items():
            for role, rules in per_role.items():
                _store(channels.setdefault(channel, {}), role, rules)
        self._default, self._roles, self._channels = default, roles, channels

    def set_default(self, permission: Permission | str, rule: Rule | str) -> None:
        """The app-wide default for `permission`: GRANT or DENY."""
        permission, rule = _arg(Permission, permission), _arg(Rule, rule)
        if rule is Rule.INHERIT:
            raise InvalidArgumentError("the default has nothing to inherit from: GRANT or DENY")
        self._default[permission] = rule is Rule.GRANT

    def set_role_rule(self, role: str, permission: Permission | str, rule: Rule | str) -> None:
        """The app-wide rule of `role` for `permission`; INHERIT removes it."""
        _store(self._roles, check_role(role), {_arg(Permission, permission): _arg(Rule, rule)})

    def set_channel_rule(
        self, channel: str, role: str, permission: Permission | str, rule: Rule | str
    ) -> None:
        """The rule of `role` for `permission` on `channel`; INHERIT removes it.

        InvalidChannelError (5044) for an invalid channel name, InvalidArgumentError
        (8002) for an invalid role, permission or rule.
        """
        check_channel(channel)
        role = check_role(role)
        rules = {_arg(Permission, permission): _arg(Rule, rule)}
        per_role = self._channels.setdefault(channel, {})
        _store(per_role, role, rules)
        if not per_role:
            del self._channels[channel]


def _store(table: dict[str, dict[Permission, bool]], role: str, rules: Rules) -> None:
    """Merge `rules` into `table[role]`: INHERIT removes, and an emptied role is dropped."""
    stored = table.get(role, {})
    for permission, rule in rules.items():
        if rule is Rule.INHERIT:
            stored.pop(permission, None)
        else:
            stored[permission] = rule is Rule.GRANT
    if stored:
        table[role] = stored
    else:
        table.pop(role, None)


def _decide(
    table: dict[str, dict[Permission, bool]], roles: tuple[str, ...], permission: Permission
) -> bool | None:
    """The verdict of one level (custom roles first, then system roles), or None: no rule."""
    custom: bool | None = None
    system: bool | None = None
    for role in roles:
        rules = table.get(role)
        if rules is None:
            continue
        granted = rules.get(permission)
        if granted is None:
            continue
        if role in SYSTEM_ROLES:
            system = granted if system is None else system and granted
        else:
            custom = granted if custom is None else custom and granted
    return system if custom is None else custom


def _as_rule(granted: bool) -> Rule:
    return Rule.GRANT if granted else Rule.DENY


def _as_rules(rules: dict[Permission, bool]) -> Rules:
    return {permission: _as_rule(granted) for permission, granted in rules.items()}
