from __future__ import annotations

import uuid

from broker._ids import MessageIds


def test_ids_are_unique_rfc4122_version4_uuids() -> None:
    ids = MessageIds()
    made = [ids() for _ in range(2000)]  # crosses several refills of the random pool
    assert len(set(made)) == len(made)
    for message_id in made:
        assert message_id.startswith("message:")
        parsed = uuid.UUID(message_id.removeprefix("message:"))
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122
        assert str(parsed) == message_id.removeprefix("message:")
