"""The reconciler's pure parts: observing conditions in audit records, the transition rules
(docs/design.md#inventory-6)."""

from __future__ import annotations

import pytest

from processor.reconciler.conditions import Condition, observe
from processor.reconciler.transitions import (
    ControllerMark,
    ObjectState,
    apply,
    emits,
    remember_mark,
    take_mark,
)
from tests.integration import reconciler_records as rr

READY = Condition("Ready", "True", "Accepted", "")
NOT_FOUND = Condition("Ready", "False", "ProviderNotFound", 'Provider "zayo" not found')
ENDPOINT = Condition("Ready", "False", "EndpointNotFound", 'Site "ams1" not found')
UNKNOWN = Condition("Ready", "Unknown", "ProviderNotFound", "")


# -- the transition table (docs/design.md#inventory-6, events_internal_test.go) ---------------
@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (None, READY, True),  # absent -> True
        (NOT_FOUND, READY, True),  # False -> True
        (UNKNOWN, READY, True),  # Unknown -> True
        (READY, READY, False),  # True -> True
        (None, NOT_FOUND, True),  # first observation, not ready
        (READY, NOT_FOUND, True),  # True -> False
        (READY, UNKNOWN, True),  # True -> Unknown
        (NOT_FOUND, ENDPOINT, True),  # a different reason
        (NOT_FOUND, NOT_FOUND, False),  # same reason, no repeat
        (NOT_FOUND, UNKNOWN, False),  # False -> Unknown, same reason
    ],
)
def test_transition_table(previous, current, expected):
    assert emits(previous, current) is expected


def test_message_change_alone_is_no_transition():
    reworded = Condition("Ready", "False", "ProviderNotFound", 'Provider "zayo" is missing')
    assert not emits(NOT_FOUND, reworded)


# -- observing audit records ------------------------------------------------------------------
def not_found(generation: int = 1) -> dict:
    return rr.condition(
        "Ready", "False", "ProviderNotFound", 'Provider "zayo" not found', generation
    )


SPEC = {"providerRef": {"name": "zayo"}, "aEnd": {"kind": "Site", "name": "ams1"}}


def test_status_patch_is_observed_with_identity_and_conditions():
    record = rr.status_patch("Circuit", "ams-fra-1", [not_found()], seq=3, rv=12, spec=SPEC)
    obs = observe(record)
    assert obs is not None
    assert (obs.kind, obs.name, obs.key) == ("Circuit", "ams-fra-1", "circuit.ams-fra-1")
    assert obs.uid == rr.uid_of("Circuit", "ams-fra-1")
    assert obs.api_version == "inventory.miloapis.com/v1alpha1"
    assert obs.resource_version == "12"
    assert obs.status_write and not obs.deleted
    assert obs.time == rr.ts(3.02)
    ready = obs.conditions["Ready"]
    assert (ready.status, ready.reason, ready.message, ready.observed_generation) == (
        "False",
        "ProviderNotFound",
        'Provider "zayo" not found',
        1,
    )


def test_merge_patch_body_is_used_when_the_response_is_not_recorded():
    record = rr.status_patch("Circuit", "c1", [not_found()], seq=3, rv=12)
    del record["responseObject"]
    obs = observe(record)
    assert obs is not None and obs.conditions["Ready"].reason == "ProviderNotFound"
    assert obs.uid == "" and obs.resource_version == ""


def test_crd_default_pending_is_not_an_observation_of_a_condition():
    obs = observe(rr.create("Circuit", "c1", SPEC, seq=1, rv=10))
    assert obs is not None  # the create still tells the uid
    assert obs.conditions == {}


def test_endpoints_resolved_followed_and_other_types_ignored():
    conds = [
        not_found(),
        rr.condition("EndpointsResolved", "True", "Accepted"),
        rr.condition("Degraded", "True", "Whatever"),
    ]
    obs = observe(rr.status_patch("Circuit", "c1", conds, seq=3, rv=12))
    assert obs is not None and sorted(obs.conditions) == ["EndpointsResolved", "Ready"]
    only_ready = observe(rr.status_patch("Circuit", "c1", conds, seq=3, rv=12), ("Ready",))
    assert only_ready is not None and sorted(only_ready.conditions) == ["Ready"]


def test_display_name_only_for_kinds_that_have_one():
    provider = observe(rr.create("Provider", "zayo", {"displayName": "Zayo"}, seq=1, rv=3))
    circuit = observe(rr.create("Circuit", "c1", {"displayName": "x", **SPEC}, seq=1, rv=3))
    assert provider is not None and provider.display_name == "Zayo"
    assert circuit is not None and circuit.display_name == ""


@pytest.mark.parametrize(
    "change",
    [
        {"responseStatus": {"code": 404}},  # failed request
        {"responseStatus": {"code": 409}},
        {"stage": "ResponseStarted"},
        {"verb": "get"},
        {"verb": "watch"},
        {"objectRef": {"resource": "circuits", "apiGroup": "other.example.com", "name": "c1"}},
        {"objectRef": {"resource": "pods", "apiGroup": "inventory.miloapis.com", "name": "c1"}},
        {"objectRef": {"resource": "circuits", "apiGroup": "inventory.miloapis.com"}},
    ],
)
def test_records_that_say_nothing_about_conditions(change):
    record = rr.status_patch("Circuit", "c1", [not_found()], seq=3, rv=12)
    record.update(change)
    assert observe(record) is None


def test_status_in_a_main_resource_request_body_is_ignored():
    record = rr.audit(
        "Circuit",
        "c1",
        verb="update",
        seq=2,
        request=rr.obj("Circuit", "c1", conditions=[not_found()]),
    )
    assert observe(record) is None


def test_a_failed_request_with_a_status_response_is_ignored():
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 409}
    record = rr.audit("Circuit", "c1", verb="patch", seq=2, response=status, code=409)
    assert observe(record) is None


def test_delete_is_observed():
    obs = observe(rr.audit("Circuit", "c1", verb="delete", seq=9))
    assert obs is not None and obs.deleted and obs.conditions == {}


# -- applying observations --------------------------------------------------------------------
def circuit_state() -> ObjectState:
    return ObjectState(kind="Circuit", name="ams-fra-1")


def test_lifecycle_created_not_ready_then_ready():
    state = circuit_state()
    create = observe(rr.create("Circuit", "ams-fra-1", SPEC, seq=1, rv=10))
    assert create is not None and apply(state, create) == []
    first = observe(rr.status_patch("Circuit", "ams-fra-1", [not_found()], seq=2, rv=11))
    assert first is not None
    [transition] = apply(state, first)
    assert not transition.ready and transition.previous is None
    again = observe(rr.status_patch("Circuit", "ams-fra-1", [not_found()], seq=32, rv=12))
    assert again is not None and apply(state, again) == []  # requeue: no repeat
    ready = rr.condition("Ready", "True", "Accepted", "")
    done = observe(rr.status_patch("Circuit", "ams-fra-1", [ready], seq=40, rv=14))
    assert done is not None
    [transition] = apply(state, done)
    assert transition.ready and transition.previous is not None
    assert transition.previous.reason == "ProviderNotFound"


def test_redelivered_or_older_writes_change_nothing():
    state = circuit_state()
    old = rr.status_patch("Circuit", "ams-fra-1", [not_found()], seq=2, rv=11)
    new = rr.status_patch(
        "Circuit", "ams-fra-1", [rr.condition("Ready", "True", "Accepted")], seq=40, rv=14
    )
    assert len(apply(state, observe(new))) == 1
    assert apply(state, observe(new)) == []  # the same record again
    assert apply(state, observe(old)) == []  # an older write arriving late
    assert state.conditions["Ready"].ready


def test_older_write_without_resource_version_is_ordered_by_time():
    state = circuit_state()
    new = rr.status_patch(
        "Circuit", "ams-fra-1", [rr.condition("Ready", "True", "Accepted")], seq=40, rv=14
    )
    old = rr.status_patch("Circuit", "ams-fra-1", [not_found()], seq=2, rv=11)
    del old["responseObject"]
    apply(state, observe(new))
    assert apply(state, observe(old)) == []


def test_recreated_object_starts_afresh():
    state = circuit_state()
    ready = [rr.condition("Ready", "True", "Accepted")]
    apply(state, observe(rr.status_patch("Circuit", "ams-fra-1", ready, seq=2, rv=11)))
    again = rr.status_patch("Circuit", "ams-fra-1", ready, seq=50, rv=30, incarnation=1)
    [transition] = apply(state, observe(again))
    assert transition.ready and transition.previous is None


def test_state_round_trips_through_json():
    state = circuit_state()
    apply(state, observe(rr.status_patch("Circuit", "ams-fra-1", [not_found()], seq=2, rv=11)))
    state.pending.append({"at": 1.5, "event": {"kind": "Event"}})
    remember_mark(state, ControllerMark("inventory.circuit.ready", "Accepted", rr.ts(9)))
    copy = ObjectState.from_json(state.to_json())
    assert copy == state


def test_controller_marks_are_consumed_once_and_only_near_in_time():
    state = circuit_state()
    mark = ControllerMark("inventory.circuit.not_ready", "ProviderNotFound", rr.ts(2))
    remember_mark(state, mark)
    remember_mark(state, mark)  # the same Event delivered twice
    assert len(state.marks) == 1
    assert not take_mark(state, "inventory.circuit.ready", "Accepted", rr.ts(2), 300)
    assert not take_mark(state, mark.event_type, mark.reason, rr.ts(2 + 600), 300)
    assert take_mark(state, mark.event_type, mark.reason, rr.ts(3), 300)
    assert not take_mark(state, mark.event_type, mark.reason, rr.ts(3), 300)
