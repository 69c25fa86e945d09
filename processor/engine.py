"""The policy engine: compiled policies indexed by resource, and record -> Activity translation.

Index (docs/design.md#policy-engine-4-1): audit policies under ``"<apiGroup>/<plural resource>"``,
event policies under ``"<apiGroup>/<Kind>"``; each key lists its policies in load order (file order,
then document order; docs/design.md#d8). Rules are compiled once; a rule whose match or summary
fails to compile is marked invalid and skipped (docs/design.md#policy-engine-3-5).

Translation follows upstream's error behaviour (docs/design.md#policy-engine-4-3,
#policy-engine-4-4, #d7): for audit records a failing policy is dead-lettered and the next policy is
still tried; for events a match error skips the rule and a summary error dead-letters the record and
stops. The first matching policy wins.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from processor.activity import Built
from processor.cel import Program, compile_expr
from processor.cel.needs import WHOLE, Guard, Need, body_needs, guards, merge_need
from processor.errors import CelCompileError, CelEvalError, KindResolveError, TemplateError
from processor.kinds import KindResolver
from processor.native import Implementation, active, twin
from processor.policy.expressions import environment
from processor.policy.model import Policy, Rule
from processor.records import (
    audit_key,
    audit_vars,
    event_vars,
    involved_object,
    normalize_event,
)
from processor.stages import DEFAULT_STAGES

if TYPE_CHECKING:
    from processor.policy.template import SummaryTemplate

#: What the Activity builder reads of the bodies (the object's uid).
BUILDER_NEEDS: dict[str, Need] = {"responseObject": {"metadata": {"uid": WHOLE}}}


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


def compile_rule(rule: Rule, impl: Implementation | None = None) -> CompiledRule:
    """Compile one rule; a compile failure makes it invalid (skipped at run time,
    docs/design.md#policy-engine-3-5).

    ``impl`` builds the plans and the template (None: the twins; results are the same).
    """
    impl = impl or twin()
    env = environment(rule.rule_type)
    try:
        match = compile_expr(rule.match, env, impl)
    except CelCompileError as exc:
        return CompiledRule(rule, None, None, f"match: {exc}")
    summary = impl.template.SummaryTemplate(rule.summary, env, impl)
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
    audit_table: RuleTable = field(init=False)
    event_table: RuleTable = field(init=False)

    def __post_init__(self) -> None:
        self.audit_table = RuleTable(self.audit_rules)
        self.event_table = RuleTable(self.event_rules)

    @property
    def name(self) -> str:
        return self.policy.name

    @property
    def api_group(self) -> str:
        return self.policy.api_group

    @property
    def kind(self) -> str:
        return self.policy.kind


_TABLE_CACHE_LIMIT = 256

#: The fields rules are pre-dispatched on, in :meth:`RuleTable.select`'s order.
_FIELDS = ("verb", "subresource", "reason", "actor")
#: Guard fields whose None keeps the rule (an absent subresource, an actor not known yet).
_KEPT_WHEN_NONE = frozenset(("subresource", "actor"))
#: A field value no guard names (see :class:`Gate`).
_OTHER: Any = object()


def _passes(guard: Guard, value: str | None) -> bool:
    """Whether a rule with ``guard`` may match a record whose field has ``value`` (None: absent).

    An absent ``subresource`` makes ``==`` an error, not false, so the rule is kept; an absent
    ``reason`` makes an event rule's match fail (error or false), which skips the rule anyway.
    An ``actor`` of None is not known yet (the caller has not read the username): kept.
    """
    if guard.absent:
        return value is None
    if value is None:
        return guard.field in _KEPT_WHEN_NONE
    return value in guard.values


class Gate:
    """The match guards of a sequence of rules as bit masks, precomputed per field value.

    Bit ``i`` stands for rule ``i`` (its guards, :func:`processor.cel.needs.guards`). For each
    field some guard reads, every value a guard names, None, and any other value map to the
    mask of the rules whose guards on that field pass it (:func:`_passes`; a rule with no guard
    on the field passes every value). :meth:`mask` of a record's routing values is the AND of
    its fields' masks: the rules that may match, in a few dict lookups, whatever was asked
    before.
    """

    __slots__ = ("_fields", "full")

    def __init__(self, guard_lists: Iterable[tuple[Guard, ...]]) -> None:
        guard_lists = tuple(guard_lists)
        self.full = (1 << len(guard_lists)) - 1
        fields: list[tuple[int, dict[str | None, int], int]] = []
        for at, name in enumerate(_FIELDS):
            named = [tuple(g for g in gs if g.field == name) for gs in guard_lists]
            if not any(named):
                continue
            values: set[str | None] = {None}
            for gs in named:
                for g in gs:
                    values.update(g.values)
            table = {v: self._bits(named, v) for v in values}
            fields.append((at, table, self._bits(named, _OTHER)))
        self._fields = tuple(fields)

    @staticmethod
    def _bits(named: list[tuple[Guard, ...]], value: Any) -> int:
        mask = 0
        for i, gs in enumerate(named):
            ok = True
            for g in gs:
                if not _passes(g, value):
                    ok = False
                    break
            if ok:
                mask |= 1 << i
        return mask

    def mask(self, values: tuple[str | None, ...]) -> int:
        """The rules that may match a record with these values (in :data:`_FIELDS` order)."""
        mask = self.full
        for at, table, other in self._fields:
            mask &= table.get(values[at], other)
        return mask


class RuleTable:
    """A policy's valid rules, pre-dispatched on cheap keys derived from their match guards.

    ``select(key)`` gives, in rule order, the rules that may match a record with these routing
    values: a rule left out has a guard conjunct that is false for it, so its match is false and
    raises nothing (:func:`processor.cel.needs.guards`). The dispatch is a :class:`Gate`; the
    selections are cached per rule mask.
    """

    __slots__ = ("_cache", "gate", "guards", "rules")

    def __init__(self, rules: Iterable[CompiledRule]) -> None:
        self.rules = tuple(r for r in rules if r.valid)
        self.guards = tuple(guards(r.match.node) if r.match else () for r in self.rules)
        self.gate = Gate(self.guards)
        self._cache: dict[int, tuple[CompiledRule, ...]] = {}

    def select(
        self,
        verb: str | None,
        subresource: str | None,
        reason: str | None = None,
        actor: str | None = None,
    ) -> tuple[CompiledRule, ...]:
        """The rules that may match (``verb``/``subresource`` and the ``actorRef.type``
        ``actor``, None when not known, for audit; ``reason`` for events)."""
        return self.rules_of(self.gate.mask((verb, subresource, reason, actor)))

    def rules_of(self, mask: int) -> tuple[CompiledRule, ...]:
        """The rules whose bits are set in ``mask``, in rule order."""
        hit = self._cache.get(mask)
        if hit is None:
            picked = []
            for i, rule in enumerate(self.rules):
                if mask >> i & 1:
                    picked.append(rule)
            hit = tuple(picked)
            if len(self._cache) < _TABLE_CACHE_LIMIT:
                self._cache[mask] = hit
        return hit


def compile_policy(
    policy: Policy, resolver: KindResolver, impl: Implementation | None = None
) -> CompiledPolicy:
    """Compile every rule of ``policy`` and resolve its plural resource."""
    return CompiledPolicy(
        policy,
        resolver.kind_to_resource(policy.api_group, policy.kind),
        tuple(compile_rule(r, impl) for r in policy.audit_rules),
        tuple(compile_rule(r, impl) for r in policy.event_rules),
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
    """One policy that failed on a record: becomes a dead-letter record (docs/design.md#d7)."""

    policy: CompiledPolicy
    rule_index: int
    error_type: str  # cel_match | cel_summary | kind_resolve
    message: str


@dataclass(slots=True)
class Translation:
    """The outcome for one record.

    ``activity`` is the first match, built (None for no match); ``failures`` lists the policies
    that failed (dead-lettered); ``skipped`` names why the record was not evaluated at all.
    """

    activity: Built | None = None
    policy: CompiledPolicy | None = None
    rule_index: int = -1
    failures: list[Failure] = field(default_factory=list)
    skipped: str = ""


@dataclass(slots=True, frozen=True)
class AuditDispatch:
    """What the engine does with the audit events of one route that the policies want
    (:meth:`Engine.audit_dispatch`): the route's index key, what the policies read of the
    bodies, and the rules that may match, worked out once per route."""

    #: the audit index key ``"<apiGroup>/<resource>"``
    key: str
    #: per body, what the policies under ``key`` and the builder read
    needs: dict[str, Need]
    verb: str
    subresource: str | None
    #: the policies under ``key`` whose :class:`RuleTable` selects a rule, with those rules, in
    #: order; None when the actor type is not known from the route (selected per event)
    selected: tuple[tuple[CompiledPolicy, tuple[CompiledRule, ...]], ...] | None


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
    rules: Iterable[CompiledRule], variables: dict, build: Callable[[str, list], Built]
) -> tuple[int, Built] | None:
    """The first valid rule that matches, rendered and built: ``(rule index, activity)``.

    Any failure (match, summary, build) raises :class:`RuleFailure`: the policy fails at that
    rule (the audit path of docs/design.md#policy-engine-4-3 and the preview path of
    #policy-engine-4-5).
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
        stages: audit stages translated (docs/design.md#d4); others are skipped. None keeps every
            stage.
        impl: the implementation of the per-record units that compiles the plans and templates,
            builds the activities and (:class:`processor.translate.Translator`) scans, routes and
            decodes: :func:`processor.native.native`, :func:`processor.native.twin`, or the
            active one (None, :func:`processor.native.active`). Results are the same.
    """

    def __init__(
        self,
        policies: Iterable[Policy],
        resolver: KindResolver | None = None,
        stages: Iterable[str] | None = DEFAULT_STAGES,
        *,
        impl: Implementation | None = None,
    ) -> None:
        self.impl = impl = impl or active()
        self._build_audit = impl.activity.build_audit
        self._build_event = impl.activity.build_event
        self.resolver = resolver or KindResolver()
        self.stages = frozenset(stages) if stages is not None else None
        policies = list(policies)
        for policy in policies:
            self.resolver.add_policy_kind(policy.api_group, policy.kind)
        self.policies = [compile_policy(p, self.resolver, impl) for p in policies]
        self.audit_index: dict[str, list[CompiledPolicy]] = {}
        self.event_index: dict[str, list[CompiledPolicy]] = {}
        for cp in self.policies:
            if cp.audit_rules:
                self.audit_index.setdefault(f"{cp.api_group}/{cp.resource}", []).append(cp)
            if cp.event_rules:
                self.event_index.setdefault(f"{cp.api_group}/{cp.kind}", []).append(cp)
        self._needs: dict[str, dict[str, Need]] = {}
        #: per audit index key, the guards of every rule of its policies (in policy order)
        self._gates: dict[str, Gate] = {}
        for key, cps in self.audit_index.items():
            self._gates[key] = Gate(gs for cp in cps for gs in cp.audit_table.guards)
            self.audit_needs(key)

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

    def audit_selects_nothing(
        self, key: str, verb: str, subresource: str | None, actor: str | None = None
    ) -> bool:
        """Whether no rule of the policies under index ``key`` can match this verb, subresource
        and actor type (``actorRef.type``; None: not known).

        True when every policy's :class:`RuleTable` selects nothing: each rule has a guard
        conjunct that is false for such a record, so evaluating them all would give no match
        and no failure. Such records are counted as no-match from their routing fields, before
        decoding (:func:`processor.records.audit.peek_selector`). One :class:`Gate` per index
        key, built with the engine: the answer costs the same for a first record as for the
        next.
        """
        return not self._gates[key].mask((verb, subresource, None, actor))

    def audit_needs(self, key: str) -> dict[str, Need]:
        """What the policies under index ``key`` (and the Activity builder) read of the bodies;
        worked out with the engine for every index key."""
        needs = self._needs.get(key)
        if needs is None:
            nodes = []
            for cp in self.audit_index.get(key, ()):
                for crule in cp.audit_table.rules:
                    assert crule.match is not None and crule.summary is not None
                    nodes.append(crule.match.node)
                    nodes.extend(p.node for p in crule.summary.programs())
            needs = dict(BUILDER_NEEDS)
            for body, need in body_needs(nodes).items():
                needs[body] = merge_need(needs.get(body), need)
            self._needs[key] = needs
        return needs

    def audit_dispatch(
        self, key: str, verb: str, subresource: str | None, actor: str | None
    ) -> AuditDispatch:
        """The :class:`AuditDispatch` of audit events under index ``key`` with this verb,
        subresource and actor type (None: not known), for events the policies want."""
        selected = None if actor is None else self._selected(key, verb, subresource, actor)
        return AuditDispatch(key, self.audit_needs(key), verb, subresource, selected)

    def _selected(
        self, key: str, verb: str, subresource: str | None, actor: str
    ) -> tuple[tuple[CompiledPolicy, tuple[CompiledRule, ...]], ...]:
        """The policies under index ``key`` with rules :class:`RuleTable` selects, with them."""
        selected = []
        for cp in self.audit_index[key]:
            rules = cp.audit_table.select(verb, subresource, None, actor)
            if rules:
                selected.append((cp, rules))
        return tuple(selected)

    def translate_audit(self, audit: dict[str, Any], *, dispatch: bool = False) -> Translation:
        """Translate a decoded audit event (:func:`processor.records.decode_audit`).

        ``dispatch`` evaluates only the rules :class:`RuleTable` selects (same results, fewer
        evaluations): the fast path's choice; the twin evaluates every rule.
        """
        key = audit_key(audit)
        skipped = self.audit_skip_reason(audit.get("stage", ""), key)
        if skipped or key is None:
            return Translation(skipped=skipped)
        variables = audit_vars(audit)
        if dispatch:
            subresource = audit.get("objectRef", {}).get("subresource")
            actor = variables["actorRef"]["type"]
            selected = self._selected(key, audit.get("verb", ""), subresource, actor)
        else:
            selected = tuple((cp, cp.audit_rules) for cp in self.audit_index[key])
        return self._evaluate_audit(audit, variables, selected)

    def translate_dispatched(self, audit: dict[str, Any], dispatch: AuditDispatch) -> Translation:
        """:meth:`translate_audit` with ``dispatch=True`` of a decoded audit event whose routing
        fields gave ``dispatch`` (its stage and index key are wanted: not checked again)."""
        variables = audit_vars(audit)
        selected = dispatch.selected
        if selected is None:
            actor = variables["actorRef"]["type"]
            selected = self._selected(dispatch.key, dispatch.verb, dispatch.subresource, actor)
        return self._evaluate_audit(audit, variables, selected)

    def _evaluate_audit(
        self,
        audit: dict[str, Any],
        variables: dict[str, Any],
        selected: Iterable[tuple[CompiledPolicy, Iterable[CompiledRule]]],
    ) -> Translation:
        """The first policy of ``selected`` with a matching rule among its rules; the policies
        that fail on the way are listed (docs/design.md#policy-engine-4-3)."""
        out = Translation()
        for cp, rules in selected:
            try:
                hit = self._first_audit_match(cp, audit, variables, rules)
            except RuleFailure as exc:
                out.failures.append(Failure(cp, exc.rule_index, exc.error_type, exc.message))
                continue
            if hit is not None:
                out.rule_index, out.activity = hit
                out.policy = cp
                return out
        return out

    def _first_audit_match(
        self, cp: CompiledPolicy, audit: dict, variables: dict, rules: Iterable[CompiledRule]
    ) -> tuple[int, Built] | None:
        def build(summary: str, links: list) -> Built:
            return self._build_audit(audit, cp.api_group, cp.kind, summary, links, self.resolver)

        return first_match(rules, variables, build)

    # -- events ------------------------------------------------------------------------------
    def translate_event(
        self, event: dict[str, Any] | None, *, dispatch: bool = False
    ) -> Translation:
        """Translate a decoded Kubernetes Event (:func:`processor.records.decode_event`).

        ``dispatch``: as for :meth:`translate_audit` (rules pre-selected on ``reason``).
        """
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
        reason = event.get("reason")
        reason = reason if type(reason) is str else None
        for cp in policies:
            rules = cp.event_table.select(None, None, reason) if dispatch else cp.event_rules
            for crule in rules:
                if not crule.valid:
                    continue
                try:
                    if not match_rule(crule, variables):
                        continue
                    summary, links = render_rule(crule, variables)
                    activity = self._build_event(
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
