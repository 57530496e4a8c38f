from __future__ import annotations

from broker import MessageStatus
from broker.stores import StatusPolicy
from broker.stores._status_log import StatusLog

PUBLISHED = MessageStatus.PUBLISHED


def test_a_re_recorded_status_lives_from_its_latest_recording() -> None:
    log = StatusLog(StatusPolicy(retention=10, max_count=100))
    log.record("m", MessageStatus.SCHEDULED, None, 1000)
    log.record("m", PUBLISHED, None, 1008)
    # The first recording is past retention, the second is not.
    record = log.get("m", 1013)
    assert record is not None
    assert record.status is PUBLISHED
    assert log.get("m", 1018) is None


def test_the_oldest_statuses_go_first_over_max_count() -> None:
    log = StatusLog(StatusPolicy(retention=10, max_count=2))
    for message_id in "abc":
        log.record(message_id, PUBLISHED, None, 1000)
    assert [log.get(m, 1000) is not None for m in "abc"] == [False, True, True]
    assert len(log) == 2


def test_an_error_message_is_kept_with_its_status() -> None:
    log = StatusLog(StatusPolicy())
    log.record("m", MessageStatus.FAILED, "no route", 5.0)
    record = log.get("m", 6.0)
    assert record is not None
    assert (record.status, record.error, record.at) == (MessageStatus.FAILED, "no route", 5.0)
