"""Preview routes inputs as the processor does: same stage filter, same resource key, and says why
an input was skipped (``activity translate`` is the processor's path offline)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml

from processor.engine import Engine
from processor.native import twin
from processor.preview import load_manifest, run_preview
from processor.translate import Output, Translator
from tests.unit.test_translate import audit, event

POLICY = {
    "resource": {"apiGroup": "apps", "kind": "Deployment"},
    "auditRules": [
        {"name": "any", "match": "true", "summary": "{{ audit.verb }} {{ audit.objectRef.name }}"}
    ],
    "eventRules": [{"name": "any", "match": "true", "summary": "event {{ event.reason }}"}],
}


def other_group() -> dict[str, Any]:
    record = audit("create")
    record["objectRef"]["apiGroup"] = "other.example.com"
    return record


def other_resource() -> dict[str, Any]:
    record = audit("create")
    record["objectRef"]["resource"] = "statefulsets"
    return record


def no_ref() -> dict[str, Any]:
    record = audit("create")
    del record["objectRef"]
    return record


def pod_event() -> dict[str, Any]:
    record = event("Started")
    record["regarding"] = {"apiVersion": "v1", "kind": "Pod", "name": "p", "namespace": "ns"}
    return record


INPUTS = [
    ("audit", audit("create"), ""),
    ("audit", audit("create", stage="RequestReceived"), "stage RequestReceived"),
    ("audit", other_group(), "apiGroup other.example.com is not this policy's (apps)"),
    ("audit", other_resource(), "resource statefulsets is not this policy's kind Deployment"),
    ("audit", no_ref(), "no objectRef"),
    ("event", event("Ready"), ""),
    ("event", pod_event(), "involved object (core)/Pod is not this policy's"),
]


def preview(all_stages: bool = False) -> list[dict[str, Any]]:
    manifest = {
        "apiVersion": "activity.miloapis.com/v1alpha1",
        "kind": "PolicyPreview",
        "metadata": {"name": "p"},
        "spec": {"policy": POLICY, "inputs": [{"type": t, t: r} for t, r, _ in INPUTS]},
    }
    loaded, policy = load_manifest(yaml.safe_dump(manifest), "p.yaml")
    return run_preview(loaded, policy, all_stages=all_stages)["status"]["results"]


def test_skipped_inputs_say_why() -> None:
    results = preview()
    assert [r.get("skipped", "") for r in results] == [why for _, _, why in INPUTS]
    assert [r["matched"] for r in results] == [not why for _, _, why in INPUTS]


def test_every_stage_on_request() -> None:
    results = preview(all_stages=True)
    assert results[1]["matched"] and "skipped" not in results[1]
    assert results[2]["skipped"].startswith("apiGroup")  # the resource key still routes


@pytest.mark.parametrize("index", range(len(INPUTS)))
def test_preview_matches_what_the_processor_makes(index: int) -> None:
    """An input matches in preview exactly when ``activity translate`` makes an activity."""
    _, policy = load_manifest(
        yaml.safe_dump(
            {
                "apiVersion": "activity.miloapis.com/v1alpha1",
                "kind": "PolicyPreview",
                "metadata": {"name": "p"},
                "spec": {"policy": POLICY, "inputs": [{"type": "audit", "audit": audit("get")}]},
            }
        ),
        "p.yaml",
    )
    translator = Translator(Engine([policy], impl=twin()), fast=False)
    kind, record, _ = INPUTS[index]
    out = Output()
    translator.translate(orjson.dumps(record), out, "audit" if kind == "audit" else "event")
    assert bool(out.activities) == preview()[index]["matched"]
