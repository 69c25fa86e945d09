"""Raw Event rows (``--store-raw``): an Event's row is the same alone or in a list."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from processor.worker.raw import raw_rows

TIMED = {
    "kind": "Event",
    "apiVersion": "v1",
    "metadata": {"uid": "a"},
    "eventTime": "2026-12-07T06:00:00Z",
}


@dataclass
class Message:
    data: bytes


def rows(*payloads: bytes) -> list[bytes]:
    table, out = raw_rows([Message(data=p) for p in payloads], "event", ())
    assert table == "k8s_events"
    return out


def test_each_event_of_a_list_is_its_own_row_as_if_sent_alone() -> None:
    a, b = orjson.dumps(TIMED), b'{ "kind" : "Event", "apiVersion": "v1", "lastTimestamp": "x" }'
    for version in (b"v1", b"events.k8s.io/v1"):
        listed = b'{"kind":"EventList","apiVersion":"%s","items":[%s , null, 7,\n%s]}' % (
            version,
            a,
            b,
        )
        assert rows(listed) == rows(a, b) == [a, b]


def test_an_event_without_a_time_gets_one_in_a_list_too() -> None:
    bare = orjson.dumps({"kind": "Event", "metadata": {"uid": "c"}})
    (row,) = rows(b'{"kind":"EventList","apiVersion":"v1","items":[%s]}' % bare)
    assert orjson.loads(row)["eventTime"] and orjson.loads(row)["metadata"] == {"uid": "c"}


def test_other_lists_and_bad_items_are_not_split() -> None:
    assert rows(b'{"kind":"EventList","apiVersion":"v1","items":7}') == []
    other = b'{"kind":"EventList","apiVersion":"v2","items":[],"eventTime":"t"}'
    assert rows(other) == [other]  # one Event, as upstream stores it
