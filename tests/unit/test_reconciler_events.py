"""Derived Events: the upstream recorder's shape and annotations, determinism, and what the
bundled and the upstream inventory policies make of them; the command's settings."""

from __future__ import annotations

import argparse
from pathlib import Path

import orjson
import pytest

from processor.commands.reconcile import reconciler_settings, register
from processor.engine import Engine
from processor.policy import load_policies
from processor.policy.bundled import bundled_policy_dir
from processor.reconciler.conditions import Condition, observe
from processor.reconciler.events import build_event, event_subject, transition_key, unix_nanos
from processor.reconciler.inputs import controller_event_identity
from processor.reconciler.settings import ReconcilerSettings
from processor.reconciler.transitions import ObjectState, Transition, apply
from processor.translate import Output, Translator
from tests.integration import reconciler_records as rr

PREFIX = "inventory.miloapis.com/"


def derived(kind: str, name: str, conditions: list[dict], *, spec=None, seq=5.0) -> list[dict]:
    state = ObjectState(kind=kind, name=name)
    record = rr.status_patch(kind, name, conditions, seq=seq, rv=20, spec=spec)
    obs = observe(record)
    assert obs is not None
    return [build_event(state, t, time=obs.time) for t in apply(state, obs)]


def test_region_ready_uses_the_display_name():
    [event] = derived(
        "Region",
        "us-east",
        [rr.condition("Ready", "True", "Accepted", "Region is ready")],
        spec={"displayName": "US East"},
    )
    annotations = event["metadata"]["annotations"]
    assert annotations[PREFIX + "event-type"] == "inventory.region.ready"
    assert annotations[PREFIX + "display-name"] == "US East"
    assert annotations[PREFIX + "condition-reason"] == "Accepted"
    assert annotations[PREFIX + "resource-kind"] == "Region"
    assert annotations[PREFIX + "resource-name"] == "us-east"
    assert annotations[PREFIX + "observed-generation"] == "1"
    assert (event["reason"], event["action"], event["type"]) == ("Ready", "Ready", "Normal")
    assert event["note"] == "Region is ready"


def test_network_device_not_ready_shape():
    [event] = derived(
        "NetworkDevice",
        "leaf-1",
        [rr.condition("Ready", "False", "ClusterNotFound", 'Cluster "c1" not found', 3)],
    )
    assert event["apiVersion"] == "events.k8s.io/v1" and event["kind"] == "Event"
    assert event["metadata"]["annotations"][PREFIX + "event-type"] == (
        "inventory.networkdevice.not_ready"
    )
    assert event["metadata"]["annotations"][PREFIX + "observed-generation"] == "3"
    assert (event["reason"], event["action"], event["type"]) == ("NotReady", "NotReady", "Warning")
    assert event["note"] == 'Cluster "c1" not found'
    assert event["reportingController"] == "inventory.miloapis.com/inventory-controller"
    assert event["regarding"] == {
        "apiVersion": "inventory.miloapis.com/v1alpha1",
        "kind": "NetworkDevice",
        "name": "leaf-1",
        "uid": rr.uid_of("NetworkDevice", "leaf-1"),
    }
    assert "namespace" not in event["regarding"]
    assert event["metadata"]["namespace"] == "default"
    # the name is <objectName>.<unixNanoHex> of the write, the time that write completed
    assert event["metadata"]["name"] == f"leaf-1.{unix_nanos(rr.ts(5.02)):x}"
    assert event["eventTime"] == rr.ts(5.02)
    for key in ("deprecatedSource", "deprecatedFirstTimestamp", "deprecatedLastTimestamp"):
        assert key in event


def test_events_are_deterministic_and_distinct():
    conds = [rr.condition("Ready", "False", "ProviderNotFound", 'Provider "zayo" not found')]
    first = derived("Circuit", "c1", conds)
    again = derived("Circuit", "c1", conds)
    later = derived("Circuit", "c1", conds, seq=9)
    assert first == again
    assert first[0]["metadata"]["uid"] != later[0]["metadata"]["uid"]
    assert first[0]["metadata"]["name"] != later[0]["metadata"]["name"]


def test_endpoints_resolved_gets_its_own_event_type_and_name():
    events = derived(
        "Circuit",
        "c1",
        [
            rr.condition("Ready", "False", "EndpointNotFound", 'Site "ams1" not found'),
            rr.condition("EndpointsResolved", "False", "EndpointNotFound", 'Site "ams1" not found'),
        ],
    )
    types = [transition_key(e)[0] for e in events]
    assert types == ["inventory.circuit.not_ready", "inventory.circuit.endpoints_not_resolved"]
    assert events[1]["reason"] == "EndpointsNotResolved"
    assert len({e["metadata"]["name"] for e in events}) == 2
    assert len({e["metadata"]["uid"] for e in events}) == 2


def test_empty_not_ready_message_falls_back_to_the_reason():
    state = ObjectState(kind="Port", name="eth0", uid="u")
    condition = Condition("Ready", "False", "DeviceNotFound", "")
    event = build_event(state, Transition(condition, None), time=rr.ts(1))
    assert event["note"] == "DeviceNotFound"
    assert event["metadata"]["annotations"][PREFIX + "display-name"] == "eth0"


def test_subject_and_namespace():
    assert event_subject("default") == "events.default"
    assert event_subject("inventory.system") == "events.inventory_system"
    state = ObjectState(kind="Port", name="eth0")
    condition = Condition("Ready", "True", "Accepted", "")
    event = build_event(state, Transition(condition, None), namespace="infra", time=rr.ts(1))
    assert event["metadata"]["namespace"] == "infra"


def test_controller_events_are_recognised_and_derived_ones_are_not():
    controller = rr.controller_event(
        "Circuit", "c1", ready=False, reason="ProviderNotFound", note="x", seq=4
    )
    assert controller_event_identity(controller) == ("Circuit", "c1", rr.ts(4))
    [mine] = derived("Circuit", "c1", [rr.condition("Ready", "False", "ProviderNotFound")])
    assert controller_event_identity(mine) is None
    other = dict(controller, regarding={"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"})
    assert controller_event_identity(other) is None


# -- the derived Events through the policies ---------------------------------------------------
def summaries(engine: Engine, events: list[dict]) -> list[str]:
    translator = Translator(engine)
    out = Output()
    for event in events:
        translator.translate(orjson.dumps(event), out, "event")
    assert out.dead_letters == []
    return [a["spec"]["summary"] for a in out.activities]


def lifecycle_events() -> list[dict]:
    state = ObjectState(kind="Circuit", name="ams-fra-1")
    events = []
    for seq, conds in (
        (2, [rr.condition("Ready", "False", "ProviderNotFound", 'Provider "zayo" not found')]),
        (9, [rr.condition("Ready", "True", "Accepted", "")]),
    ):
        obs = observe(rr.status_patch("Circuit", "ams-fra-1", conds, seq=seq, rv=seq))
        assert obs is not None
        events += [build_event(state, t, time=obs.time) for t in apply(state, obs)]
    return events


def test_bundled_policies_read_the_derived_events():
    engine = Engine(load_policies([bundled_policy_dir() / "inventory"]))
    assert summaries(engine, lifecycle_events()) == [
        'Circuit ams-fra-1 is not ready: Provider "zayo" not found',
        "Circuit ams-fra-1 is ready",
    ]


def test_upstream_policies_read_the_derived_events(real_policies_dir: Path):
    paths = sorted(real_policies_dir.glob("milo-os-inventory__*.yaml"))
    assert len(paths) == 12
    engine = Engine(load_policies(paths))
    assert summaries(engine, lifecycle_events()) == [
        'Inventory Circuit ams-fra-1 is not ready: Provider "zayo" not found',
        "Inventory Circuit ams-fra-1 is ready",
    ]


# -- settings ---------------------------------------------------------------------------------
def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    return parser.parse_args(["reconcile", *argv])


def test_settings_from_flags_and_environment():
    env = {
        "ACTIVITY_NATS_URL": "nats://nats:4222",
        "INVENTORY_ACTIVITY_NAMESPACE": "inventory-events",
        "POD_NAME": "worker-0",
        "ACTIVITY_RECONCILER_GRACE": "2.5",
    }
    settings = reconciler_settings(parse(["--partitions", "0-3", "--conditions", "Ready"]), env)
    assert settings.nats_url == "nats://nats:4222"
    assert settings.namespace == "inventory-events"
    assert settings.instance == "worker-0"
    assert settings.grace == 2.5
    assert settings.partitions == "0-3"
    assert settings.conditions == ("Ready",)
    flagged = reconciler_settings(parse(["--namespace", "ops"]), env)
    assert flagged.namespace == "ops"
    assert reconciler_settings(parse([]), {}) == ReconcilerSettings()


@pytest.mark.parametrize(
    "argv", [["--grace", "soon"], ["--conditions", "Degraded"], ["--namespace", ""]]
)
def test_invalid_settings(argv):
    with pytest.raises(ValueError):
        reconciler_settings(parse(argv), {})
