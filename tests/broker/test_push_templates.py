"""Stored push templates: validation, substitution, audiences by device type, storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from broker import BrokerError
from broker.push_templates import PushTemplate, PushTemplates, check_template, from_config
from broker.stores import SqliteStore, StatusPolicy


@pytest.fixture
async def templates(tmp_path: Path) -> AsyncIterator[PushTemplates]:
    store = SqliteStore(tmp_path / "db")
    await store.open(StatusPolicy())
    stored = PushTemplates(store)
    await stored.open(
        {"welcome": {"message": "Hi {name}", "push_broadcast": "FOR_IOS", "channel": "news"}}
    )
    yield stored
    await store.close()


async def test_config_templates_are_stored_and_listed_by_device_type(
    templates: PushTemplates,
) -> None:
    welcome = await templates.get("welcome")
    assert welcome == PushTemplate("Hi {name}", channel="news", push_broadcast="FOR_IOS")
    await templates.put("everyone", {"message": "All", "headers": {"k": 1}})
    assert list(await templates.list()) == ["everyone", "welcome"]
    assert list(await templates.list("IOS")) == ["everyone", "welcome"]
    assert list(await templates.list("ANDROID")) == ["everyone"]
    with pytest.raises(BrokerError) as unknown_type:
        await templates.list("PALM")
    assert unknown_type.value.code == 8002
    await templates.delete("everyone")
    for missing in (templates.delete("everyone"), templates.get("everyone")):
        with pytest.raises(BrokerError) as gone:
            await missing
        assert gone.value.code == 5042


def test_render_substitutes_known_values_and_keeps_the_rest() -> None:
    template = PushTemplate(
        "Hi {name}, {count} new {missing}",
        headers={"ios-alert-title": "For {name}", "ios-badge": 3, "extra": "{list}"},
    )
    message, headers = template.render({"name": "Ann", "count": 2, "list": [1, "a"]})
    assert message == "Hi Ann, 2 new {missing}"
    assert headers == {"ios-alert-title": "For Ann", "ios-badge": 3, "extra": '[1,"a"]'}
    options = template.options()
    assert (options.policy, options.broadcast, options.singlecast) == ("PUSH", None, None)


@pytest.mark.parametrize(
    ("name", "template", "code"),
    [
        ("bad name!", {"message": "x"}, 8002),
        ("", {"message": "x"}, 8002),
        ("t", {"message": 5}, 8002),
        ("t", {"message": "x", "unknown": 1}, 8002),
        ("t", {"message": "x", "channel": "bad channel"}, 5044),
        ("t", {"message": "x", "pushBroadcast": "FOR_PALM"}, 8002),
        ("t", {"message": "x", "segmentQuery": "os = "}, 5050),
        ("t", "not an object", 8002),
    ],
)
def test_invalid_templates_are_refused_with_codes(name: str, template: object, code: int) -> None:
    with pytest.raises(BrokerError) as refused:
        check_template(name, template)
    assert refused.value.code == code


def test_config_keys_are_snake_case() -> None:
    assert from_config({"push_broadcast": 1, "segment_query": "a = 1", "message": "m"}) == {
        "pushBroadcast": 1,
        "segmentQuery": "a = 1",
        "message": "m",
    }
