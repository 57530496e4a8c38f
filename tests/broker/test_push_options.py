"""The push fields of a publish body: publishPolicy, pushBroadcast, pushSinglecast, segmentQuery."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker import BrokerError, InvalidArgumentError, SelectorError
from broker.push_options import (
    ALL,
    ALL_OS,
    OS_BITS,
    PublishPolicy,
    PushMessageError,
    PushOptions,
    check_push_message,
    parse_push_options,
)


def code_of(body: Any) -> int:
    with pytest.raises(BrokerError) as caught:
        parse_push_options(body)
    return caught.value.code


# -- publishPolicy / pushPolicy -------------------------------------------------------------


def test_a_body_without_push_fields_is_pubsub_only() -> None:
    options = parse_push_options({"message": {"not": "a string"}, "headers": {"a": 1}})
    assert options == PushOptions()
    assert options.policy is PublishPolicy.PUBSUB
    assert options.to_pubsub
    assert not options.to_push
    assert options.to_wire() == {
        "publishPolicy": None,
        "pushBroadcast": None,
        "pushSinglecast": None,
    }


@pytest.mark.parametrize(
    ("body", "policy", "pubsub", "push"),
    [
        ({"publishPolicy": "PUBSUB"}, PublishPolicy.PUBSUB, True, False),
        ({"publishPolicy": "PUSH"}, PublishPolicy.PUSH, False, True),
        ({"publishPolicy": "BOTH"}, PublishPolicy.BOTH, True, True),
        ({"publishPolicy": "push"}, PublishPolicy.PUSH, False, True),
        ({"publishPolicy": " Both "}, PublishPolicy.BOTH, True, True),
        ({"publishPolicy": None}, PublishPolicy.PUBSUB, True, False),
        ({"pushPolicy": "ONLY"}, PublishPolicy.PUSH, False, True),
        ({"pushPolicy": "ALSO"}, PublishPolicy.BOTH, True, True),
        ({"pushPolicy": "also"}, PublishPolicy.BOTH, True, True),
        ({"pushPolicy": None}, PublishPolicy.PUBSUB, True, False),
        # publishPolicy wins over the legacy pushPolicy
        ({"publishPolicy": "PUBSUB", "pushPolicy": "ONLY"}, PublishPolicy.PUBSUB, True, False),
        ({"publishPolicy": "PUSH", "pushPolicy": "ALSO"}, PublishPolicy.PUSH, False, True),
    ],
)
def test_publish_policy(
    body: dict[str, Any], policy: PublishPolicy, pubsub: bool, push: bool
) -> None:
    options = parse_push_options(body)
    assert options.policy is policy
    assert (options.to_pubsub, options.to_push) == (pubsub, push)


@pytest.mark.parametrize(
    "body",
    [
        {"publishPolicy": "ALL"},
        {"publishPolicy": "ONLY"},  # legacy names only under pushPolicy
        {"publishPolicy": ""},
        {"publishPolicy": 1},
        {"publishPolicy": ["PUSH"]},
        {"pushPolicy": "PUSH"},
        {"pushPolicy": "NEVER"},
        {"pushPolicy": True},
        {"publishPolicy": "PUSH", "pushPolicy": "SOMETIMES"},  # both are checked
    ],
)
def test_an_unknown_policy_is_8002(body: dict[str, Any]) -> None:
    assert code_of(body) == 8002


def test_the_policy_error_names_the_choices() -> None:
    with pytest.raises(InvalidArgumentError, match="PUBSUB, PUSH or BOTH, not 'SOON'"):
        parse_push_options({"publishPolicy": "SOON"})
    with pytest.raises(InvalidArgumentError, match="must be a string, not a number"):
        parse_push_options({"publishPolicy": 3})


def test_the_delivered_message_names_a_push_policy() -> None:
    assert parse_push_options({"publishPolicy": "BOTH"}).to_wire()["publishPolicy"] == "BOTH"
    assert parse_push_options({"pushPolicy": "ONLY"}).to_wire()["publishPolicy"] == "PUSH"


# -- pushBroadcast --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "mask"),
    [
        (1, 1),
        (15, 15),
        (16, 16),
        (31, 31),
        ("FOR_IOS", 1),
        ("FOR_ANDROID", 2),
        ("FOR_WP", 4),
        ("FOR_OSX", 8),
        ("FOR_WEB", 16),
        ("FOR_IOS|FOR_ANDROID", 3),
        ("for_ios | for_android", 3),
        ("IOS|ANDROID", 3),  # the Flutter SDK's names, without FOR_
        ("ios, web", 17),
        ("ALL", ALL),
        ("FOR_ALL", ALL),
        ("ALL|FOR_WEB", ALL_OS),
        ("FOR_IOS|FOR_IOS", 1),
        (0, None),  # 0 and null: not set, as a delivered message spells it
        (None, None),
    ],
)
def test_push_broadcast(value: object, mask: int | None) -> None:
    options = parse_push_options({"publishPolicy": "PUSH", "pushBroadcast": value})
    assert options.broadcast == mask
    assert options.to_wire()["pushBroadcast"] == mask


def test_all_is_backendless_fifteen_without_web() -> None:
    assert ALL == OS_BITS["IOS"] | OS_BITS["ANDROID"] | OS_BITS["WP"] | OS_BITS["OSX"] == 15
    assert not ALL & OS_BITS["WEB"]
    assert ALL_OS == 31


@pytest.mark.parametrize(
    "value",
    [-1, 32, 64, 1.0, 15.5, True, False, "", "FOR_IOS|", "FOR_BLACKBERRY", "FOR_", "3", [1, 2], {}],
)
def test_a_bad_push_broadcast_is_8002(value: object) -> None:
    assert code_of({"publishPolicy": "PUSH", "pushBroadcast": value}) == 8002


def test_the_broadcast_error_says_what_is_wrong() -> None:
    with pytest.raises(InvalidArgumentError, match="unknown name 'FOR_BLACKBERRY'"):
        parse_push_options({"pushBroadcast": "FOR_IOS|FOR_BLACKBERRY"})
    with pytest.raises(InvalidArgumentError, match="from 1 to 31"):
        parse_push_options({"pushBroadcast": 40})
    with pytest.raises(InvalidArgumentError, match="not an array"):
        parse_push_options({"pushBroadcast": [1]})


@given(st.lists(st.sampled_from([*OS_BITS, "ALL"]), min_size=1), st.data())
def test_a_broadcast_string_is_the_or_of_its_names(names: list[str], data: st.DataObject) -> None:
    spelled = [data.draw(st.sampled_from([name, f"FOR_{name}", name.lower()])) for name in names]
    separator = data.draw(st.sampled_from(["|", " | ", ",", ", "]))
    expected = 0
    for name in names:
        expected |= ALL if name == "ALL" else OS_BITS[name]
    assert parse_push_options({"pushBroadcast": separator.join(spelled)}).broadcast == expected


# -- pushSinglecast -------------------------------------------------------------------------


def test_push_singlecast_keeps_order_and_drops_duplicates() -> None:
    options = parse_push_options({"publishPolicy": "PUSH", "pushSinglecast": ["b", "a", "b"]})
    assert options.singlecast == ("b", "a")
    assert options.to_wire()["pushSinglecast"] == ["b", "a"]


def test_an_empty_singlecast_targets_no_device_rather_than_all() -> None:
    options = parse_push_options({"publishPolicy": "PUSH", "pushSinglecast": []})
    assert options.singlecast == ()
    assert options.to_wire()["pushSinglecast"] == []
    assert parse_push_options({"pushSinglecast": None}).singlecast is None


@pytest.mark.parametrize("value", ["device-1", 5, {"id": "x"}, [1], [""], ["a", None], [["a"]]])
def test_a_bad_push_singlecast_is_8002(value: object) -> None:
    assert code_of({"publishPolicy": "PUSH", "pushSinglecast": value}) == 8002


# -- segmentQuery ---------------------------------------------------------------------------


def test_segment_query_is_a_selector() -> None:
    options = parse_push_options({"publishPolicy": "PUSH", "segmentQuery": "os = 'IOS'"})
    assert options.segment_query == "os = 'IOS'"
    assert parse_push_options({"segmentQuery": "  "}).segment_query is None
    assert parse_push_options({"segmentQuery": None}).segment_query is None


def test_an_invalid_segment_query_is_5050_with_its_position() -> None:
    with pytest.raises(SelectorError) as caught:
        parse_push_options({"publishPolicy": "PUSH", "segmentQuery": "os = "})
    assert caught.value.code == 5050
    assert caught.value.position >= 0


def test_a_segment_query_that_is_not_a_string_is_8002() -> None:
    assert code_of({"segmentQuery": 5}) == 8002


# -- the message of a push ------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["PUSH", "BOTH"])
@pytest.mark.parametrize("message", [{"text": "hi"}, 5, None, ["a"], True])
def test_a_push_message_must_be_a_string(policy: str, message: object) -> None:
    with pytest.raises(PushMessageError) as caught:
        parse_push_options({"publishPolicy": policy, "message": message})
    assert caught.value.code == 5041


def test_a_string_message_or_a_pubsub_message_of_any_kind_passes() -> None:
    assert parse_push_options({"publishPolicy": "PUSH", "message": "hi"}).to_push
    assert not parse_push_options({"message": {"any": "json"}}).to_push
    assert parse_push_options({"publishPolicy": "PUSH"}).to_push  # no message key: not checked


def test_check_push_message() -> None:
    assert check_push_message("hello") == "hello"
    with pytest.raises(PushMessageError, match="not an object"):
        check_push_message({"a": 1})
    with pytest.raises(PushMessageError, match="not null"):
        check_push_message(None)
    with pytest.raises(PushMessageError, match="not a boolean"):
        check_push_message(False)
    with pytest.raises(PushMessageError, match="not a number"):
        check_push_message(2.5)
    with pytest.raises(PushMessageError, match="not bytes"):
        check_push_message(b"raw")
    assert PushMessageError().message == "a push message must be a string"


# -- the body and the struct ----------------------------------------------------------------


@pytest.mark.parametrize("body", [None, "PUSH", ["publishPolicy"], 5])
def test_a_body_that_is_not_an_object_is_8002(body: object) -> None:
    assert code_of(body) == 8002


def test_a_full_body() -> None:
    options = parse_push_options(
        {
            "message": "sale!",
            "publishPolicy": "BOTH",
            "pushBroadcast": "FOR_IOS|FOR_WEB",
            "pushSinglecast": ["d1", "d2"],
            "segmentQuery": "osVersion = '17'",
            "unknown": "ignored",
        }
    )
    assert options == PushOptions(PublishPolicy.BOTH, 17, ("d1", "d2"), "osVersion = '17'")
    assert options.to_wire() == {
        "publishPolicy": "BOTH",
        "pushBroadcast": 17,
        "pushSinglecast": ["d1", "d2"],
    }
    # frozen, hashable, encodable
    assert hash(options) == hash(
        PushOptions(PublishPolicy.BOTH, 17, ("d1", "d2"), options.segment_query)
    )
    with pytest.raises(AttributeError):
        options.policy = PublishPolicy.PUSH  # type: ignore[misc]
    assert msgspec.json.decode(msgspec.json.encode(options), type=PushOptions) == options


def test_options_built_in_python_are_checked() -> None:
    assert PushOptions("PUSH").policy is PublishPolicy.PUSH  # type: ignore[arg-type]
    assert PushOptions(PublishPolicy.BOTH, broadcast=31, singlecast=()).to_push
    with pytest.raises(InvalidArgumentError, match="PUBSUB, PUSH or BOTH"):
        PushOptions("LATER")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        PushOptions(["PUSH"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError):
        PushOptions(broadcast=0)
    with pytest.raises(InvalidArgumentError):
        PushOptions(broadcast=True)
    with pytest.raises(InvalidArgumentError, match="tuple of non-empty"):
        PushOptions(singlecast=["a"])  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="tuple of non-empty"):
        PushOptions(singlecast=("a", ""))
    with pytest.raises(InvalidArgumentError, match="segment_query must be a string"):
        PushOptions(segment_query=5)  # type: ignore[arg-type]
    with pytest.raises(SelectorError):
        PushOptions(segment_query="a = = 1")
