"""PolicyPreview: run one policy over sample inputs, as upstream's preview API does
(docs/design.md#policy-engine-1-3, #policy-engine-4-5).

The manifest is validated like upstream's (the policy spec per docs/design.md#policy-engine-1-1,
then the inputs); every rule of the policy is evaluated in order for each input, and any match,
summary or build error is reported in that input's result instead of stopping the preview.
Activities are built by the one Activity builder (docs/design.md#d6) with a local kind resolver
(#d10), so preview shows what the running processor would publish.

Inputs are routed as the processor routes them (:class:`~processor.engine.Engine`): an audit event
of a stage the processor skips (only ``ResponseComplete`` by default), of another resource than
the policy's, or without an objectRef, and an Event about another kind, are not evaluated; their
result says why (``skipped``). ``all_stages`` evaluates audit events of every stage.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from processor import preview_fetch
from processor.activity import Built, build_audit, build_event
from processor.engine import (
    CompiledPolicy,
    Engine,
    RuleFailure,
    compile_policy,
    first_match,
)
from processor.errors import PolicyError, PolicyErrors, ProcessorError, RecordError
from processor.kinds import KindResolver
from processor.native import twin
from processor.policy.loader import read_documents
from processor.policy.model import Policy, spec_to_policy
from processor.policy.validate import validate_policy
from processor.preview_fetch import Scope
from processor.records import (
    audit_key,
    audit_vars,
    decode_audit,
    decode_event,
    event_vars,
    involved_object,
    normalize_event,
)
from processor.stages import DEFAULT_STAGES

if TYPE_CHECKING:
    from processor.query.service import Backend

API_VERSION = "activity.miloapis.com/v1alpha1"
KIND = "PolicyPreview"
_INPUT_TYPES = ("audit", "event")
WHOLE_POLICY = (
    "Invalid value: spec.policy holds the policy's spec (resource, auditRules, eventRules), not a "
    "whole ActivityPolicy; move its spec up (drop its apiVersion, kind and metadata)"
)


def plain(value: Any) -> Any:
    """YAML values as JSON would carry them: timestamps YAML parsed become RFC 3339 strings."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        text = value.isoformat()
        return (
            text[:-6] + "Z" if text.endswith("+00:00") else (text if value.tzinfo else text + "Z")
        )
    if isinstance(value, date):
        return value.isoformat()
    return value


def load_manifest(text: str, file: str = "") -> tuple[dict[str, Any], Policy]:
    """Parse and validate a PolicyPreview manifest.

    Returns:
        ``(manifest, policy)``.

    Raises:
        PolicyErrors: every problem, each with its field path (``spec.policy.auditRules[0].match``).
    """
    documents, errors = read_documents(text, file)
    if errors:
        raise PolicyErrors(errors)
    if len(documents) != 1:
        raise PolicyErrors(
            [
                PolicyError(
                    f"expected exactly one PolicyPreview document, found {len(documents)}",
                    file=file,
                )
            ]
        )
    doc = documents[0]
    manifest = plain(doc.data)
    positions = doc.positions

    def err(path: str, message: str) -> PolicyError:
        line, column = positions.get(path) or positions.get(path.rpartition(".")[0]) or (None, None)
        return PolicyError(message, path=path, file=file, line=line, column=column)

    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise PolicyErrors(
            [err("kind", f"Invalid value: expected apiVersion: {API_VERSION} and kind: {KIND}")]
        )
    spec = manifest.get("spec")
    if not isinstance(spec, dict):
        raise PolicyErrors(
            [err("spec", "Required value: spec must be a mapping with 'policy' and 'inputs'")]
        )
    if is_whole_policy(spec.get("policy")):
        raise PolicyErrors([err("spec.policy", WHOLE_POLICY)])
    name = (manifest.get("metadata") or {}).get("name") or ""
    policy, problems, _warnings = spec_to_policy(
        spec.get("policy"), name=name, file=file, positions=positions, spec_path="spec.policy"
    )
    problems = list(problems)
    if policy is not None:
        problems.extend(validate_policy(policy))
    problems.extend(_validate_inputs(spec, err))
    if problems or policy is None:
        raise PolicyErrors(problems or [err("spec.policy", "Required value: provide the policy")])
    return manifest, policy


def is_whole_policy(value: Any) -> bool:
    """True when ``value`` is a whole ActivityPolicy object rather than a policy's spec."""
    if not isinstance(value, dict) or "resource" in value:
        return False
    return value.get("kind") == "ActivityPolicy" or "apiVersion" in value or "spec" in value


def _validate_inputs(spec: dict[str, Any], err: Any) -> list[PolicyError]:
    inputs = spec.get("inputs")
    if spec.get("autoFetch") is not None:
        if inputs:
            return [
                err(
                    "spec",
                    "Invalid value: cannot specify both 'inputs' and 'autoFetch' - "
                    "use one or the other",
                )
            ]
        return preview_fetch.validate(spec["autoFetch"], err)
    if not inputs:
        return [err("spec", "Required value: provide either 'inputs' or 'autoFetch'")]
    if not isinstance(inputs, list):
        return [err("spec.inputs", "Invalid value: inputs must be a list")]
    problems = []
    for i, item in enumerate(inputs):
        path = f"spec.inputs[{i}]"
        kind = item.get("type") if isinstance(item, dict) else None
        if not kind:
            problems.append(
                err(
                    f"{path}.type",
                    "Required value: specify whether this input is an 'audit' log or 'event'",
                )
            )
        elif kind not in _INPUT_TYPES:
            problems.append(
                err(
                    f"{path}.type",
                    f'Unsupported value: "{kind}": supported values: "audit", "event"',
                )
            )
        elif item.get(kind) is None:
            what = "audit log" if kind == "audit" else "event"
            problems.append(
                err(f"{path}.{kind}", f"Required value: provide the {what} data to test")
            )
    return problems


def run_preview(
    manifest: dict[str, Any],
    policy: Policy,
    resolver: KindResolver | None = None,
    all_stages: bool = False,
    *,
    backend: Backend | None = None,
    scope: Scope | None = None,
    now_ns: int | None = None,
) -> dict[str, Any]:
    """Evaluate the policy on every input; return the manifest with ``status`` filled.

    With ``spec.autoFetch`` the inputs are recent records read from ``backend``
    (:mod:`processor.preview_fetch`); they are evaluated as given inputs are and listed in
    ``status.fetchedInputs`` (absent when none was found, as upstream).

    Args:
        manifest: a manifest from :func:`load_manifest`.
        policy: its policy.
        resolver: the kind resolver (default: a local one knowing the policy's kind).
        all_stages: evaluate audit events of every stage, not only the processor's.
        backend: the store autoFetch reads (a sink, or anything with ``query``).
        scope: the tenant autoFetch reads for (default: every tenant).
        now_ns: the end of autoFetch's window (default: now).

    Raises:
        PreviewError: autoFetch without a backend.
        processor.query.errors.QueryError: autoFetch's window is invalid for a table.
        processor.sink.base.SinkError: the store failed.
    """
    resolver = resolver or KindResolver()
    resolver.add_policy_kind(policy.api_group, policy.kind)
    spec = manifest["spec"]
    fetched: list[dict[str, Any]] | None = None
    if spec.get("autoFetch") is not None:
        if backend is None:
            raise PreviewError(
                "spec.autoFetch reads recent audit logs and Events from the store: give "
                "--clickhouse-url (or list the records under spec.inputs)"
            )
        auto = preview_fetch.AutoFetch.from_spec(spec["autoFetch"])
        fetched = preview_fetch.fetch_inputs(
            backend, policy, auto, resolver, scope or Scope(), now_ns
        )
    inputs = spec["inputs"] if fetched is None else fetched
    activities, results = _evaluate(policy, inputs, resolver, all_stages)
    out = {k: v for k, v in manifest.items() if k != "status"}
    out["status"] = {"activities": activities, "results": results}
    if fetched:
        out["status"]["fetchedInputs"] = fetched
    return out


def _evaluate(
    policy: Policy, inputs: list[dict[str, Any]], resolver: KindResolver, all_stages: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    compiled = compile_policy(policy, resolver)
    router = Engine([policy], stages=None if all_stages else DEFAULT_STAGES, impl=twin())
    results: list[dict[str, Any]] = []
    activities: list[dict[str, Any]] = []
    for index, item in enumerate(inputs):
        result: dict[str, Any] = {"inputIndex": index, "matched": False, "matchedRuleIndex": -1}
        skipped = _skipped(router, policy, item)
        if skipped:
            result["skipped"] = skipped
            results.append(result)
            continue
        try:
            if item["type"] == "audit":
                hit = _preview_audit(compiled, item["audit"], resolver)
            else:
                hit = _preview_event(compiled, item["event"], resolver)
        except _PreviewError as exc:
            result["error"] = str(exc)
            hit = None
        if hit is not None:
            rule_index, activity = hit
            rules = compiled.audit_rules if item["type"] == "audit" else compiled.event_rules
            result.update(
                matched=True,
                matchedRuleIndex=rule_index,
                matchedRuleType=item["type"],
                matchedRuleName=rules[rule_index].rule.name,
            )
            activities.append(activity.activity())
        results.append(result)
    return activities, results


class PreviewError(ProcessorError):
    """A preview that cannot run (autoFetch without a store)."""


class _PreviewError(Exception):
    pass


def _skipped(router: Engine, policy: Policy, item: dict[str, Any]) -> str:
    """Why the processor would not evaluate this input ("" when it would, or when only
    evaluating it can tell: an input that does not decode reports its error)."""
    try:
        if item["type"] == "audit":
            audit = decode_audit(item["audit"])
            stage, key = audit.get("stage", ""), audit_key(audit)
            reason = router.audit_skip_reason(stage, key)
            if reason == "no_object_ref":
                return "no objectRef"
            if reason == "stage":
                return f"stage {stage or '(none)'}"
            if reason:
                group, _, resource = (key or "").partition("/")
                if group != policy.api_group:
                    ours = policy.api_group or "(core)"
                    return f"apiGroup {group or '(core)'} is not this policy's ({ours})"
                return f"resource {resource} is not this policy's kind {policy.kind}"
            return ""
        event = decode_event(item["event"])
    except RecordError:
        return ""
    found = involved_object(event) if event is not None else None
    if found is None:
        return "no involved object"
    group, kind = found[0], found[1]
    if f"{group}/{kind}" not in router.event_index:
        return f"involved object {group or '(core)'}/{kind} is not this policy's"
    return ""


def _failure(exc: RuleFailure) -> _PreviewError:
    stage = {"cel_match": "match", "cel_summary": "summary"}.get(exc.error_type)
    if stage is None:
        return _PreviewError(f"failed to build activity for rule {exc.rule_index}: {exc.message}")
    return _PreviewError(f"failed to evaluate rule {exc.rule_index} {stage}: {exc.message}")


def _preview_audit(
    cp: CompiledPolicy, raw: Any, resolver: KindResolver
) -> tuple[int, Built] | None:
    try:
        audit = decode_audit(raw)
    except RecordError as exc:
        raise _PreviewError(f"invalid audit input: {exc}") from None
    resolver.observe_audit(audit)

    def build(summary: str, links: list) -> Built:
        return build_audit(audit, cp.api_group, cp.kind, summary, links, resolver)

    try:
        return first_match(cp.audit_rules, audit_vars(audit), build)
    except RuleFailure as exc:
        raise _failure(exc) from None


def _preview_event(
    cp: CompiledPolicy, raw: Any, resolver: KindResolver
) -> tuple[int, Built] | None:
    try:
        event = decode_event(raw)
    except RecordError as exc:
        raise _PreviewError(f"invalid event input: {exc}") from None
    if event is None:
        raise _PreviewError("invalid event input: the event is null")
    found = involved_object(event)
    involved: dict[str, Any] = {}
    if found is not None:
        involved = found[2]
        event = normalize_event(event, involved)

    def build(summary: str, links: list) -> Built:
        return build_event(event, involved, cp.api_group, cp.kind, summary, links, resolver)

    try:
        return first_match(cp.event_rules, event_vars(event), build)
    except RuleFailure as exc:
        raise _failure(exc) from None
