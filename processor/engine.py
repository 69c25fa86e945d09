"""The policy engine: compiled policies indexed by resource, and record -> Activity translation.

Index (policy-engine §4.1): audit policies under ``"<apiGroup>/<plural resource>"``, event
policies under ``"<apiGroup>/<Kind>"``; each key lists its policies in load order (file order, then
document order; decision 8). Rules are compiled once; a rule whose match or summary fails to
compile is marked invalid and skipped (§3.5).

Translation follows upstream's error behaviour (§4.3, §4.4, decision 7): for audit records a
failing policy is dead-lettered and the next policy is still tried; for events a match error skips
the rule and a summary error dead-letters the record and stops. The first matching policy wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from processor.activity import build_audit_activity, build_event_activity
from processor.cel import Program, compile_expr
from processor.errors import CelCompileError, CelEvalError, KindResolveError, TemplateError
from processor.kinds import KindResolver
from processor.policy.expressions import environment
from processor.policy.model import Policy, Rule
from processor.policy.template import SummaryTemplate
from processor.records import (
    audit_key,
    audit_vars,
    event_vars,
    involved_object,
    normalize_event,
)

DEFAULT_STAGES = ("ResponseComplete",)


@dataclass(slots=True)
class CompiledRule:
    """A rule with its compiled match program and summary template (None when invalid)."""

    rule: Rule
    match: Program | None
    summary: SummaryTemplate | None
    error: str = ""

    @property
    def valid(self) -> bool:
        return not self.error


def compile_rule(rule: Rule) -> CompiledRule:
    """Compile one rule; a compile failure makes it invalid (skipped at run time, §3.5)."""
    env = environment(rule.rule_type)
    try:
        match = compile_expr(rule.match, env)
    except CelCompileError as exc:
        return CompiledRule(rule, None, None, f"match: {exc}")
    summary = SummaryTemplate(rule.summary, env)
    if not summary.valid:
        return CompiledRule(rule, match, None, "summary: " + "; ".join(summary.errors))
    return CompiledRule(rule, match, summary)


@dataclass(slots=True)
class CompiledPolicy:
    """A policy ready for matching."""

    policy: Policy
    resource: str
    audit_rules: tuple[CompiledRule, ...]
    event_rules: tuple[CompiledRule, ...]

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def api_group(self) -> str:
        return self.policy.api_group

    @property
    def kind(self) -> str:
        return self.policy.kind


def compile_policy(policy: Policy, resolver: KindResolver) -> CompiledPolicy:
    """Compile every rule of ``policy`` and resolve its plural resource."""
    return CompiledPolicy(
        policy,
        resolver.kind_to_resource(policy.api_group, policy.kind),
        tuple(compile_rule(r) for r in policy.audit_rules),
        tuple(compile_rule(r) for r in policy.event_rules),
    )


class RuleFailure(Exception):
    """A rule failed while matching, rendering or building; ``error_type`` names the stage."""

    def __init__(self, error_type: str, rule_index: int, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.rule_index = rule_index
        self.message = message


@dataclass(slots=True)
class Failure:
    """One policy that failed on a record: becomes a dead-letter record (decision 7)."""

    policy: CompiledPolicy
    rule_index: int
    error_type: str  # cel_match | cel_summary | kind_resolve
    message: str


@dataclass(slots=True)
class Translation:
    """The outcome for one record.

    ``activity`` is the first match (None for no match); ``failures`` lists the policies that
    failed (dead-lettered); ``skipped`` names why the record was not evaluated at all.
    """

    activity: dict[str, Any] | None = None
    policy: CompiledPolicy | None = None
    rule_index: int = -1
    failures: list[Failure] = field(default_factory=list)
    skipped: str = ""


def match_rule(crule: CompiledRule, variables: dict) -> bool:
    """Evaluate a rule's match; raise :class:`RuleFailure` (``cel_match``) on a CEL error."""
    assert crule.match is not None
    try:
        result = crule.match.evaluate(variables)
    except CelEvalError as exc:
        raise RuleFailure(
            "cel_match", crule.rule.index, f"failed to evaluate match: {exc}"
        ) from None
    if result is True:
        return True
    if result is False:
        return False
    raise RuleFailure("cel_match", crule.rule.index, "match expression did not return boolean")


def render_rule(crule: CompiledRule, variables: dict) -> tuple[str, list]:
    """Render a rule's summary; raise :class:`RuleFailure` (``cel_summary``) on failure."""
    assert crule.summary is not None
    links: list = []
    try:
        return crule.summary.render(variables, links), links
    except TemplateError as exc:
        raise RuleFailure("cel_summary", crule.rule.index, str(exc)) from None


def first_match(
    rules: Iterable[CompiledRule], variables: dict, build: Callable[[str, list], dict]
) -> tuple[int, dict] | None:
    """The first valid rule that matches, rendered and built: ``(rule index, activity)``.

    Any failure (match, summary, build) raises :class:`RuleFailure`: the policy fails at that
    rule (the audit path of §4.3 and the preview path of §4.5).
    """
    for crule in rules:
        if not crule.valid or not match_rule(crule, variables):
            continue
        summary, links = render_rule(crule, variables)
        try:
            return crule.rule.index, build(summary, links)
        except KindResolveError as exc:
            raise RuleFailure("kind_resolve", crule.rule.index, str(exc)) from None
    return None


class Engine:
    """Compiled policies indexed for matching, plus the kind resolver used to build activities.

    Args:
        policies: ActivityPolicies in load order (validated).
        resolver: kind resolver; every policy's Kind is registered in it.
        stages: audit stages translated (decision 4); others are skipped. None keeps every stage.
    """

    def __init__(
        self,
        policies: Iterable[Policy],
        resolver: KindResolver | None = None,
        stages: Iterable[str] | None = DEFAULT_STAGES,
    ) -> None:
        self.resolver = resolver or KindResolver()
        self.stages = frozenset(stages) if stages is not None else None
        policies = list(policies)
        for policy in policies:
            self.resolver.add_policy_kind(policy.api_group, policy.kind)
        self.policies = [compile_policy(p, self.resolver) for p in policies]
        self.audit_index: dict[str, list[CompiledPolicy]] = {}
        self.event_index: dict[str, list[CompiledPolicy]] = {}
        for cp in self.policies:
            if cp.audit_rules:
                self.audit_index.setdefault(f"{cp.api_group}/{cp.resource}", []).append(cp)
            if cp.event_rules:
                self.event_index.setdefault(f"{cp.api_group}/{cp.kind}", []).append(cp)

    # -- audit -------------------------------------------------------------------------------
    def audit_skip_reason(self, stage: str, key: str | None) -> str:
        """Why a record with these routing fields is skipped ("" when policies want it).

        ``key`` is :func:`processor.records.audit_key` (None: no objectRef). The one routing
        decision, taken on decoded records and on routing fields peeked before decoding.
        """
        if key is None:
            return "no_object_ref"
        if self.stages is not None and stage not in self.stages:
            return "stage"
        if key not in self.audit_index:
            return "no_matching_policy"
        return ""

    def translate_audit(self, audit: dict[str, Any]) -> Translation:
        """Translate a decoded audit event (:func:`processor.records.decode_audit`)."""
        key = audit_key(audit)
        skipped = self.audit_skip_reason(audit.get("stage", ""), key)
        if skipped or key is None:
            return Translation(skipped=skipped)
        policies = self.audit_index[key]
        variables = audit_vars(audit)
        out = Translation()
        for cp in policies:
            try:
                hit = self._first_audit_match(cp, audit, variables)
            except RuleFailure as exc:
                out.failures.append(Failure(cp, exc.rule_index, exc.error_type, exc.message))
                continue
            if hit is not None:
                out.rule_index, out.activity = hit
                out.policy = cp
                return out
        return out

    def _first_audit_match(
        self, cp: CompiledPolicy, audit: dict, variables: dict
    ) -> tuple[int, dict] | None:
        def build(summary: str, links: list) -> dict:
            return build_audit_activity(audit, cp.api_group, cp.kind, summary, links, self.resolver)

        return first_match(cp.audit_rules, variables, build)

    # -- events ------------------------------------------------------------------------------
    def translate_event(self, event: dict[str, Any] | None) -> Translation:
        """Translate a decoded Kubernetes Event (:func:`processor.records.decode_event`)."""
        if event is None:
            return Translation(skipped="null_event")
        found = involved_object(event)
        if found is None:
            return Translation(skipped="no_involved_object")
        api_group, kind, involved = found
        policies = self.event_index.get(f"{api_group}/{kind}")
        if not policies:
            return Translation(skipped="no_matching_policy")
        event = normalize_event(event, involved)
        variables = event_vars(event)
        out = Translation()
        for cp in policies:
            for crule in cp.event_rules:
                if not crule.valid:
                    continue
                try:
                    if not match_rule(crule, variables):
                        continue
                    summary, links = render_rule(crule, variables)
                    activity = build_event_activity(
                        event, involved, cp.api_group, cp.kind, summary, links, self.resolver
                    )
                except RuleFailure as exc:
                    if exc.error_type == "cel_match":
                        continue  # upstream: an event rule whose match errors is skipped
                    out.failures.append(Failure(cp, exc.rule_index, exc.error_type, exc.message))
                    return out
                except KindResolveError as exc:
                    out.failures.append(Failure(cp, crule.rule.index, "kind_resolve", str(exc)))
                    return out
                out.activity, out.policy, out.rule_index = activity, cp, crule.rule.index
                return out
        return out
