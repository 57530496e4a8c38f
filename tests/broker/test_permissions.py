"""Channel permissions: the configuration shape, the resolution matrix, denials, admin changes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import BrokerError
from broker._errors import InvalidArgumentError, InvalidChannelError
from broker.permissions import (
    AUTHENTICATED_USER,
    NOT_AUTHENTICATED_USER,
    SYSTEM_ROLES,
    DeleteDeniedError,
    Permission,
    PermissionDeniedError,
    Permissions,
    PermissionsConfig,
    PermissionsConfigError,
    PublishDeniedError,
    Rule,
    SubscribeDeniedError,
    check_role,
)

PUBLISH, SUBSCRIBE, DELETE = Permission.PUBLISH, Permission.SUBSCRIBE, Permission.DELETE
ANON = (NOT_AUTHENTICATED_USER,)
USER = (AUTHENTICATED_USER,)


# -- defaults and loading ----------------------------------------------------------------------


@pytest.mark.parametrize("roles", [ANON, USER, (AUTHENTICATED_USER, "Admin"), ()])
@pytest.mark.parametrize("permission", list(Permission))
def test_with_no_configuration_everything_is_granted(
    roles: tuple[str, ...], permission: Permission
) -> None:
    permissions = Permissions()
    assert permissions.allowed("news", roles, permission)
    permissions.require("news", roles, permission)  # does not raise


def test_the_documented_example_loads_and_applies() -> None:
    permissions = Permissions(
        {
            "default": {"PUBLISH": "GRANT", "SUBSCRIBE": "GRANT", "DELETE": "DENY"},
            "roles": {"Admin": {"DELETE": "GRANT"}},
            "channels": {"news": {"NotAuthenticatedUser": {"PUBLISH": "DENY"}}},
        }
    )
    assert not permissions.allowed("news", ANON, PUBLISH)
    assert permissions.allowed("news", ANON, SUBSCRIBE)
    assert permissions.allowed("sports", ANON, PUBLISH)
    assert permissions.allowed("news", USER, PUBLISH)
    assert not permissions.allowed("news", USER, DELETE)
    assert permissions.allowed("news", (AUTHENTICATED_USER, "Admin"), DELETE)


def test_from_config_reads_a_server_table() -> None:
    permissions = Permissions.from_config({"roles": {N: {"PUBLISH": "DENY"}}})
    assert not permissions.allowed("c", ANON, PUBLISH)
    assert Permissions.from_config(None).allowed("c", ANON, PUBLISH)


def test_permission_and_rule_names_are_case_insensitive() -> None:
    config = PermissionsConfig.from_dict(
        {"default": {"publish": "deny"}, "roles": {"Admin": {"Publish": "Grant"}}}
    )
    assert config.default == {PUBLISH: Rule.DENY}
    assert config.roles == {"Admin": {PUBLISH: Rule.GRANT}}


def test_every_table_is_optional() -> None:
    assert PermissionsConfig.from_dict({}) == PermissionsConfig()
    assert Permissions({"roles": {}}).allowed("c", USER, DELETE)


def test_a_config_struct_is_accepted_as_it_is() -> None:
    config = PermissionsConfig(default={SUBSCRIBE: Rule.DENY})
    permissions = Permissions(config)
    assert not permissions.allowed("c", USER, SUBSCRIBE)
    assert permissions.allowed("c", USER, PUBLISH)


@pytest.mark.parametrize(
    ("data", "where", "fragment"),
    [
        ([], "permissions", "expected a table, got list"),
        ({"defaults": {}}, "permissions", "unknown key 'defaults'"),
        ({"default": "GRANT"}, "default", "expected a table, got str"),
        ({"default": {"PUBLISH": "INHERIT"}}, "default.PUBLISH", "nothing to inherit"),
        ({"default": {"WRITE": "GRANT"}}, "default", "'WRITE' is not a permission"),
        ({"default": {"PUBLISH": "MAYBE"}}, "default.PUBLISH", "'MAYBE' is not a rule"),
        ({"default": {"PUBLISH": True}}, "default.PUBLISH", "True is not a rule"),
        ({"roles": ["Admin"]}, "roles", "expected a table, got list"),
        ({"roles": {"": {}}}, "roles", "non-empty string"),
        ({"roles": {" Admin": {}}}, "roles", "leading or trailing whitespace"),
        ({"roles": {"Admin": {"DELETE": "NO"}}}, "roles.Admin.DELETE", "'NO' is not a rule"),
        ({"roles": {"Admin": "GRANT"}}, "roles.Admin", "expected a table, got str"),
        ({"channels": {"a b": {}}}, "channels", "may not contain ' '"),
        ({"channels": {"push": {}}}, "channels", "reserved"),
        ({"channels": {"news": []}}, "channels.news", "expected a table, got list"),
        ({"channels": {"news": {"R\n": {}}}}, "channels.news", "control characters"),
        (
            {"channels": {"news": {"Admin": {"PUBLISH": "X"}}}},
            "channels.news.Admin.PUBLISH",
            "'X' is not a rule (expected one of GRANT, DENY, INHERIT)",
        ),
        (
            {"channels": {"news": {"Admin": {"READ": "GRANT"}}}},
            "channels.news.Admin",
            "(expected one of PUBLISH, SUBSCRIBE, DELETE)",
        ),
    ],
)
def test_an_invalid_configuration_says_where_and_why(data: Any, where: str, fragment: str) -> None:
    with pytest.raises(PermissionsConfigError) as caught:
        Permissions(data)
    error = caught.value
    assert error.code == 8002
    assert isinstance(error, InvalidArgumentError)
    assert isinstance(error, ValueError)  # config loaders can catch it as such
    assert error.where == where
    assert error.message.startswith(f"invalid permissions at {where}: ")
    assert fragment in error.message


def test_an_invalid_struct_is_refused_too() -> None:
    with pytest.raises(PermissionsConfigError, match=r"default\.DELETE"):
        Permissions(PermissionsConfig(default={DELETE: Rule.INHERIT}))


# -- the resolution matrix ---------------------------------------------------------------------

MATRIX_CONFIG = {
    "default": {"DELETE": "DENY"},
    "roles": {
        "NotAuthenticatedUser": {"PUBLISH": "DENY"},
        "AuthenticatedUser": {"PUBLISH": "GRANT", "DELETE": "INHERIT"},
        "Admin": {"DELETE": "GRANT"},
        "Muted": {"PUBLISH": "DENY"},
        "Vip": {"PUBLISH": "GRANT"},
    },
    "channels": {
        "announcements": {
            "AuthenticatedUser": {"PUBLISH": "DENY"},
            "Editor": {"PUBLISH": "GRANT"},
        },
        "lobby": {"NotAuthenticatedUser": {"PUBLISH": "GRANT"}},
        "secret": {
            "NotAuthenticatedUser": {"SUBSCRIBE": "DENY"},
            "AuthenticatedUser": {"SUBSCRIBE": "DENY"},
            "Agent": {"SUBSCRIBE": "GRANT"},
            "Burned": {"SUBSCRIBE": "DENY"},
            "Ghost": {"SUBSCRIBE": "INHERIT"},
        },
    },
}
A, N = AUTHENTICATED_USER, NOT_AUTHENTICATED_USER

MATRIX = [
    # (why, channel, roles, permission, allowed)
    ("no rule anywhere: the default GRANT", "other", (A,), SUBSCRIBE, True),
    ("no rule anywhere: the default DENY", "other", (A,), DELETE, False),
    ("no roles at all: the default", "other", (), PUBLISH, True),
    ("no roles at all: the default DENY", "other", (), DELETE, False),
    ("an unknown role has no rules: the default", "other", ("Stranger",), DELETE, False),
    ("INHERIT is no rule: the default", "other", (A,), DELETE, False),
    ("app-wide custom GRANT beats the default DENY", "other", (A, "Admin"), DELETE, True),
    ("app-wide system DENY beats the default GRANT", "other", (N,), PUBLISH, False),
    ("app-wide system GRANT", "other", (A,), PUBLISH, True),
    ("app-wide system roles disagree: DENY", "other", (N, A), PUBLISH, False),
    ("app-wide custom GRANT beats app-wide system DENY", "other", (N, "Vip"), PUBLISH, True),
    ("app-wide custom DENY beats app-wide system GRANT", "other", (A, "Muted"), PUBLISH, False),
    ("app-wide custom roles disagree: DENY", "other", (A, "Vip", "Muted"), PUBLISH, False),
    ("order of roles does not matter", "other", ("Muted", A, "Vip"), PUBLISH, False),
    ("channel system GRANT beats app-wide system DENY", "lobby", (N,), PUBLISH, True),
    ("channel system DENY beats app-wide system GRANT", "announcements", (A,), PUBLISH, False),
    (
        "channel system DENY beats app-wide custom GRANT",
        "announcements",
        (A, "Vip"),
        PUBLISH,
        False,
    ),
    (
        "channel custom GRANT beats channel system DENY",
        "announcements",
        (A, "Editor"),
        PUBLISH,
        True,
    ),
    (
        "channel custom GRANT beats app-wide DENY",
        "announcements",
        ("Muted", "Editor"),
        PUBLISH,
        True,
    ),
    ("channel custom roles disagree: DENY", "secret", (A, "Agent", "Burned"), SUBSCRIBE, False),
    ("channel custom GRANT alone", "secret", (A, "Agent"), SUBSCRIBE, True),
    ("channel INHERIT falls to channel system DENY", "secret", (A, "Ghost"), SUBSCRIBE, False),
    ("channel system DENY for anonymous", "secret", (N,), SUBSCRIBE, False),
    ("channel rules of another permission do not apply", "secret", (A,), PUBLISH, True),
    ("channel rules of another permission: app-wide", "secret", (N,), PUBLISH, False),
    ("channel rules of another channel do not apply", "announcements2", (A,), PUBLISH, True),
    ("channel without a rule for the role: app-wide", "lobby", (A, "Muted"), PUBLISH, False),
    ("channel rules do not touch DELETE: app-wide", "lobby", (A, "Admin"), DELETE, True),
]


@pytest.mark.parametrize(
    ("channel", "roles", "permission", "expected"),
    [case[1:] for case in MATRIX],
    ids=[case[0] for case in MATRIX],
)
def test_resolution_matrix(
    channel: str, roles: tuple[str, ...], permission: Permission, expected: bool
) -> None:
    permissions = Permissions(MATRIX_CONFIG)
    assert permissions.allowed(channel, roles, permission) is expected
    assert permissions.allowed(channel, list(roles), permission) is expected  # any iterable


def _oracle(config: dict[str, Any], channel: str, roles: list[str], permission: str) -> bool:
    """The documented algorithm, written out level by level."""
    per_channel = config["channels"].get(channel, {})
    for table in (per_channel, config["roles"]):
        for system in (False, True):
            found = [
                table[role][permission]
                for role in roles
                if (role in SYSTEM_ROLES) is system
                and table.get(role, {}).get(permission, "INHERIT") != "INHERIT"
            ]
            if found:
                return "DENY" not in found
    return bool(config["default"].get(permission, "GRANT") == "GRANT")


ROLE_NAMES = st.sampled_from([N, A, "Admin", "Muted"])
PERMISSIONS = st.sampled_from([p.value for p in Permission])
RULE_TABLE = st.dictionaries(PERMISSIONS, st.sampled_from(["GRANT", "DENY", "INHERIT"]))
CONFIGS = st.fixed_dictionaries(
    {
        "default": st.dictionaries(PERMISSIONS, st.sampled_from(["GRANT", "DENY"])),
        "roles": st.dictionaries(ROLE_NAMES, RULE_TABLE),
        "channels": st.dictionaries(
            st.sampled_from(["a", "b"]), st.dictionaries(ROLE_NAMES, RULE_TABLE)
        ),
    }
)


@given(
    config=CONFIGS,
    channel=st.sampled_from(["a", "b", "c"]),
    roles=st.lists(ROLE_NAMES, max_size=4),
    permission=PERMISSIONS,
)
def test_resolution_follows_the_documented_levels(
    config: dict[str, Any], channel: str, roles: list[str], permission: str
) -> None:
    expected = _oracle(config, channel, roles, permission)
    permissions = Permissions(config)
    assert permissions.allowed(channel, roles, Permission(permission)) is expected
    # The snapshot carries the same rules.
    assert Permissions(permissions.config).allowed(channel, roles, Permission(permission)) is (
        expected
    )


# -- denials -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("permission", "error_type", "code", "message"),
    [
        (PUBLISH, PublishDeniedError, 5007, "user has no permission to publish to channel 'news'"),
        (
            SUBSCRIBE,
            SubscribeDeniedError,
            5008,
            "user has no permission to subscribe to channel 'news'",
        ),
        (DELETE, DeleteDeniedError, 5007, "user has no permission to delete channel 'news'"),
    ],
)
def test_a_denial_raises_the_backendless_code(
    permission: Permission, error_type: type[PermissionDeniedError], code: int, message: str
) -> None:
    permissions = Permissions({"channels": {"news": {N: {permission.value: "DENY"}}}})
    with pytest.raises(error_type) as caught:
        permissions.require("news", ANON, permission)
    error = caught.value
    assert isinstance(error, PermissionDeniedError)
    assert isinstance(error, BrokerError)
    assert (error.code, error.message) == (code, message)
    assert error.channel == "news"
    assert error.permission is permission
    assert str(error) == f"[{code}] {message}"
    permissions.require("news", USER, permission)  # other roles are not affected


# -- changes at runtime ------------------------------------------------------------------------


def test_set_default_changes_what_has_no_rule() -> None:
    permissions = Permissions()
    permissions.set_default("subscribe", "deny")
    assert not permissions.allowed("c", USER, SUBSCRIBE)
    permissions.set_default(SUBSCRIBE, Rule.GRANT)
    assert permissions.allowed("c", USER, SUBSCRIBE)


def test_set_role_rule_adds_and_inherit_removes() -> None:
    permissions = Permissions({"default": {"DELETE": "DENY"}})
    permissions.set_role_rule("Admin", DELETE, "GRANT")
    assert permissions.allowed("c", (A, "Admin"), DELETE)
    assert msgspec.to_builtins(permissions.config)["roles"] == {"Admin": {"DELETE": "GRANT"}}
    permissions.set_role_rule("Admin", "delete", Rule.INHERIT)
    assert not permissions.allowed("c", (A, "Admin"), DELETE)
    assert permissions.config.roles == {}
    permissions.set_role_rule("Nobody", PUBLISH, "INHERIT")  # removing what is not there
    assert permissions.config.roles == {}


def test_set_channel_rule_adds_and_inherit_removes() -> None:
    permissions = Permissions()
    permissions.set_channel_rule("news", N, "PUBLISH", "DENY")
    permissions.set_channel_rule("news", N, "SUBSCRIBE", "DENY")
    assert not permissions.allowed("news", ANON, PUBLISH)
    assert permissions.allowed("sports", ANON, PUBLISH)
    permissions.set_channel_rule("news", N, PUBLISH, Rule.INHERIT)
    assert permissions.allowed("news", ANON, PUBLISH)
    assert not permissions.allowed("news", ANON, SUBSCRIBE)
    permissions.set_channel_rule("news", N, SUBSCRIBE, Rule.INHERIT)
    assert permissions.config.channels == {}  # nothing left for the channel
    permissions.set_channel_rule("quiet", N, SUBSCRIBE, Rule.INHERIT)
    assert permissions.config.channels == {}


def test_the_config_snapshot_round_trips_and_lists_every_default() -> None:
    permissions = Permissions(MATRIX_CONFIG)
    permissions.set_channel_rule("lobby", "Admin", DELETE, "DENY")
    snapshot = msgspec.to_builtins(permissions.config)
    assert snapshot["default"] == {"PUBLISH": "GRANT", "SUBSCRIBE": "GRANT", "DELETE": "DENY"}
    assert snapshot["roles"]["AuthenticatedUser"] == {"PUBLISH": "GRANT"}  # INHERIT dropped
    assert "Ghost" not in snapshot["channels"]["secret"]
    assert snapshot["channels"]["lobby"]["Admin"] == {"DELETE": "DENY"}
    # What an admin API would persist as JSON and load at the next start.
    reloaded = Permissions(msgspec.json.decode(msgspec.json.encode(permissions.config)))
    assert reloaded.config == permissions.config
    # Changing the snapshot does not change the rules in force.
    permissions.config.default[PUBLISH] = Rule.DENY
    assert permissions.allowed("c", USER, PUBLISH)


def test_replace_puts_a_whole_configuration_in_force() -> None:
    permissions = Permissions(MATRIX_CONFIG)
    permissions.replace({"default": {"PUBLISH": "DENY"}})
    assert not permissions.allowed("lobby", ANON, PUBLISH)
    assert permissions.allowed("other", USER, DELETE)
    permissions.replace(None)
    assert permissions.config == Permissions().config


def test_a_rejected_replacement_changes_nothing() -> None:
    permissions = Permissions(MATRIX_CONFIG)
    before = permissions.config
    with pytest.raises(PermissionsConfigError):
        permissions.replace({"default": {"PUBLISH": "DENY"}, "roles": {"Admin": {"X": "DENY"}}})
    assert permissions.config == before


@pytest.mark.parametrize(
    ("change", "error_type", "fragment"),
    [
        (lambda p: p.set_default("WRITE", "GRANT"), InvalidArgumentError, "not a permission"),
        (lambda p: p.set_default(PUBLISH, "INHERIT"), InvalidArgumentError, "nothing to inherit"),
        (lambda p: p.set_default(PUBLISH, None), InvalidArgumentError, "None is not a rule"),
        (lambda p: p.set_role_rule("", PUBLISH, "DENY"), InvalidArgumentError, "role name"),
        (lambda p: p.set_role_rule("R", PUBLISH, "NOPE"), InvalidArgumentError, "not a rule"),
        (lambda p: p.set_channel_rule("a/b", "R", PUBLISH, "DENY"), InvalidChannelError, "'/'"),
        (lambda p: p.set_channel_rule("c", "R\t", PUBLISH, "DENY"), InvalidArgumentError, "role"),
        (lambda p: p.set_channel_rule("c", "R", "READ", "DENY"), InvalidArgumentError, "READ"),
    ],
)
def test_an_invalid_change_is_refused_and_changes_nothing(
    change: Any, error_type: type[BrokerError], fragment: str
) -> None:
    permissions = Permissions()
    before = permissions.config
    with pytest.raises(error_type, match=fragment):
        change(permissions)
    assert permissions.config == before


# -- role names --------------------------------------------------------------------------------


def test_check_role_accepts_ordinary_names() -> None:
    assert check_role("Admin") == "Admin"
    assert check_role("Team Lead") == "Team Lead"
    assert check_role("x" * 255) == "x" * 255


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        (None, "non-empty string"),
        (3, "non-empty string"),
        ("", "non-empty string"),
        ("x" * 256, "longer than 255"),
        ("Admin ", "whitespace"),
        ("Ad\x00min", "control"),
    ],
)
def test_check_role_refuses_bad_names(name: object, fragment: str) -> None:
    with pytest.raises(InvalidArgumentError, match=fragment) as caught:
        check_role(name)
    assert caught.value.code == 8002
