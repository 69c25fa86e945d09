"""``activity lint``: load and validate policy files, and warn about rules that cannot work.

On top of loading (:mod:`processor.policy.loader`) and API-server validation
(:mod:`processor.policy.validate`), the linter warns about:

* a rule after an unconditional rule (``match: "true"``) in the same list: the first matching rule
  wins, so it can never match;
* a rule whose match expression (whitespace-normalised) repeats an earlier one in the same list;
* a policy without a fallback audit rule: audit records that match no rule produce no activity.
  A rule with ``match: "true"`` is a fallback wherever it stands (the rules after it are warned
  about as unreachable instead); so is a last rule that is a guarded catch-all: a conjunction
  (``&&``) whose only verb condition, if any, is ``audit.verb in [...]`` listing at least create,
  update, patch and delete; guards on the actor, the response status, dry runs or subresources
  are allowed;
* a policy without rules, or without ``metadata.name``.

Report lines are ``FILE:LINE:COL: POLICY: field.path: message`` for errors and
``FILE:LINE:COL: POLICY: field.path: warning: message`` for warnings (line and column when known).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from processor.cel import ast as cel_ast
from processor.errors import PolicyError
from processor.policy.loader import LoadResult, load_file, policy_files
from processor.policy.model import Policy, Rule
from processor.policy.validate import check_policy

_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def normalise_expression(source: str) -> str:
    """A CEL source with insignificant whitespace removed, to compare expressions.

    Whitespace inside string literals is kept; a run of whitespace between two identifier
    characters (``x in y``) becomes one space; any other run is dropped.
    """
    out: list[str] = []
    i, n = 0, len(source)
    pending_space = False
    while i < n:
        ch = source[i]
        if ch.isspace():
            pending_space = True
            i += 1
            continue
        if pending_space and out and out[-1][-1] in _IDENT_CHARS and ch in _IDENT_CHARS:
            out.append(" ")
        pending_space = False
        if ch in "'\"":
            quote = source[i : i + 3] if source[i : i + 3] in ("'''", '"""') else ch
            end = i + len(quote)
            while end < n and not source.startswith(quote, end):
                end += 2 if source[end] == "\\" else 1
            end = min(end + len(quote), n)
            out.append(source[i:end])
            i = end
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def is_unconditional(rule: Rule) -> bool:
    """True when the rule's match is the literal ``true`` (it matches every record)."""
    return rule.match.strip() == "true"


_WRITE_VERBS = frozenset(("create", "update", "patch", "delete"))


def _conjuncts(node: cel_ast.Node) -> list[cel_ast.Node]:
    if isinstance(node, cel_ast.And):
        return _conjuncts(node.left) + _conjuncts(node.right)
    return [node]


def _is_verb(node: cel_ast.Node) -> bool:
    return (
        isinstance(node, cel_ast.Select)
        and node.field == "verb"
        and isinstance(node.operand, cel_ast.Ident)
        and node.operand.name == "audit"
    )


def _mentions_verb(node: Any) -> bool:
    if isinstance(node, cel_ast.Node):
        return _is_verb(node) or any(_mentions_verb(v) for v in vars(node).values())
    if isinstance(node, list | tuple):
        return any(_mentions_verb(v) for v in node)
    return False


def _all_writes(node: cel_ast.Node) -> bool:
    """``audit.verb in [...]`` with a literal list that covers every write verb."""
    if not (isinstance(node, cel_ast.Binary) and node.op == "in" and _is_verb(node.left)):
        return False
    if not isinstance(node.right, cel_ast.ListLit):
        return False
    verbs = {i.value for i in node.right.items if isinstance(i, cel_ast.Literal)}
    return verbs >= _WRITE_VERBS


def is_fallback(rule: Rule) -> bool:
    """True for ``match: "true"`` and for a guarded catch-all of every write verb (see module)."""
    if is_unconditional(rule):
        return True
    try:
        tree = cel_ast.parse(rule.match)
    except Exception:
        return False
    return all(_all_writes(c) or not _mentions_verb(c) for c in _conjuncts(tree))


def has_fallback(rules: tuple[Rule, ...]) -> bool:
    """True when some rule is ``match: "true"`` or the last one is a fallback (see module)."""
    return any(is_unconditional(rule) for rule in rules) or is_fallback(rules[-1])


def _rule_list_warnings(policy: Policy, rules: tuple[Rule, ...]) -> list[PolicyError]:
    warnings = []
    catch_all: Rule | None = None
    seen: dict[str, Rule] = {}
    for rule in rules:
        where = f"{policy.rule_path(rule)}.match"
        if catch_all is not None:
            warnings.append(
                policy.error(
                    where,
                    f"rule can never match: {policy.rule_path(catch_all)} "
                    f"({catch_all.name or 'unnamed'}) above it matches everything (match: true) "
                    "and the first matching rule wins; move this rule above it or remove it",
                )
            )
            continue
        key = normalise_expression(rule.match)
        earlier = seen.get(key)
        if earlier is not None and rule.match:
            warnings.append(
                policy.error(
                    where,
                    f"rule can never match: it has the same match expression as "
                    f"{policy.rule_path(earlier)} ({earlier.name or 'unnamed'}) and the first "
                    "matching rule wins; change or remove one of them",
                )
            )
        seen.setdefault(key, rule)
        if is_unconditional(rule):
            catch_all = rule
    return warnings


def lint_warnings(policy: Policy) -> list[PolicyError]:
    """The linter's own warnings for one policy (not the API-server ones)."""
    warnings = []
    if not policy.name:
        warnings.append(
            policy.error(
                "metadata.name",
                "policy has no metadata.name; name it (it identifies the policy in activities, "
                "metrics and dead letters)",
            )
        )
    warnings.extend(_rule_list_warnings(policy, policy.audit_rules))
    warnings.extend(_rule_list_warnings(policy, policy.event_rules))
    if policy.audit_rules and not has_fallback(policy.audit_rules):
        warnings.append(
            policy.error(
                f"{policy.spec_path}.auditRules",
                "no fallback rule: audit records that match none of these rules produce no "
                'activity; end with a rule that records any other change (match: "true", or '
                "guards with at most audit.verb in ['create', 'update', 'patch', 'delete', ...])",
            )
        )
    return warnings


@dataclass
class LintReport:
    """The outcome of linting some paths: policies, errors and warnings in source order."""

    policies: list[Policy] = field(default_factory=list)
    errors: list[PolicyError] = field(default_factory=list)
    warnings: list[PolicyError] = field(default_factory=list)
    files: int = 0
    _entries: list[tuple[bool, PolicyError]] = field(default_factory=list, repr=False)

    @property
    def exit_code(self) -> int:
        """1 when there are errors, else 0 (warnings alone pass)."""
        return 1 if self.errors else 0

    def add(self, errors: Iterable[PolicyError], warnings: Iterable[PolicyError]) -> None:
        """Record findings of one file, keeping them in source order."""
        batch = [(False, e) for e in errors] + [(True, w) for w in warnings]
        batch.sort(key=lambda item: (item[1].document or 0, item[1].line or 0, item[1].column or 0))
        for is_warning, finding in batch:
            (self.warnings if is_warning else self.errors).append(finding)
            self._entries.append((is_warning, finding))

    def lines(self) -> list[str]:
        """The report lines, in source order."""
        return [format_finding(e, warning=w) for w, e in self._entries]

    def findings(self) -> list[dict[str, Any]]:
        """The findings in source order as plain data (``-o json``, ``-o yaml``)."""
        return [
            {
                "severity": "warning" if is_warning else "error",
                "file": e.file,
                "line": e.line,
                "column": e.column,
                "document": e.document,
                "policy": e.policy,
                "field": e.path,
                "message": e.message,
            }
            for is_warning, e in self._entries
        ]

    def summary(self) -> str:
        """One line: how many files, policies, errors and warnings."""
        return (
            f"{self.files} file(s), {len(self.policies)} policy(ies): "
            f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)"
        )


def format_finding(error: PolicyError, warning: bool = False) -> str:
    """``FILE:LINE:COL: POLICY: field.path: [warning: ]message``."""
    policy = error.policy or "<unnamed>"
    message = f"warning: {error.message}" if warning else error.message
    path = f"{error.path}: " if error.path else ""
    return error.with_excerpt(f"{error.location()}: {policy}: {path}{message}")


def lint_policies(result: LoadResult, report: LintReport) -> None:
    """Validate and lint the policies of one load result into ``report``."""
    errors = list(result.errors)
    warnings = list(result.warnings)
    for policy in result.policies:
        checked = check_policy(policy)
        errors.extend(checked.errors)
        warnings.extend(checked.warnings)
        warnings.extend(lint_warnings(policy))
    report.policies.extend(result.policies)
    report.add(errors, warnings)


def lint_paths(paths: Iterable[str | Path]) -> LintReport:
    """Load, validate and lint the policies in files and directories.

    Args:
        paths: policy files and/or directories (searched recursively for ``*.yaml``/``*.yml``).

    Returns:
        The report; ``exit_code`` is 1 if anything is an error (including finding no policy at
        all), 0 if there are only warnings.
    """
    paths = list(paths)
    files, missing = policy_files(paths)
    report = LintReport(files=len(files))
    report.add(missing, [])
    for file in files:
        lint_policies(load_file(file), report)
    if not report.policies and not report.errors:
        where = ", ".join(str(p) for p in paths)
        report.add([PolicyError("no ActivityPolicy documents found", file=where)], [])
    return report
