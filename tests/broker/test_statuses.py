from __future__ import annotations

from broker import MessageStatus
from broker._statuses import StatusLog


class Clock:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_re_recorded_status_lives_from_its_latest_recording() -> None:
    clock = Clock()
    log = StatusLog(retention=10, max_count=100, clock=clock)
    log.record("m", MessageStatus.SCHEDULED)
    clock.now += 8
    log.record("m", MessageStatus.PUBLISHED)
    clock.now += 5  # the first recording is past retention, the second is not
    assert log.get("m") is MessageStatus.PUBLISHED
    clock.now += 5
    assert log.get("m") is MessageStatus.UNKNOWN


def test_the_oldest_statuses_go_first_over_max_count() -> None:
    log = StatusLog(retention=10, max_count=2, clock=Clock())
    for message_id in "abc":
        log.record(message_id, MessageStatus.PUBLISHED)
    assert [log.get(m) for m in "abc"] == ["unknown", "published", "published"]
