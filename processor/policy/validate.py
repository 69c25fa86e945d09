"""ActivityPolicy validation, as the upstream API server does it (docs/design.md#policy-engine-1-1).

Checks, in order, all errors collected:

1. ``spec.resource.kind`` is required (an empty ``apiGroup`` is the core group and valid).
2. For each audit rule, then each event rule: ``name`` is required and must be a DNS-1123
   subdomain; ``match`` is required and must be a boolean CEL expression
   (docs/design.md#policy-engine-2-5); ``summary`` is required and must be a valid template
   (#policy-engine-3-4); a name already used earlier in the same list is a duplicate, reported on
   the later rule.
3. Warning only: a policy without rules "has no rules defined and will have no effect".

Messages follow Kubernetes field errors (``Required value: ...``, ``Invalid value: "x": ...``,
``Duplicate value: ...``); the CEL messages are the upstream validator's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from processor.errors import CelCompileError, PolicyError
from processor.policy.model import Policy, Rule

#: apimachinery's DNS-1123 subdomain regex and limit (``validation.IsDNS1123Subdomain``).
DNS1123_SUBDOMAIN_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
DNS1123_SUBDOMAIN_MAX_LENGTH = 253
_DNS1123_SUBDOMAIN = re.compile(DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_ERROR = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    f"for validation is '{DNS1123_SUBDOMAIN_FMT}')"
)

KIND_REQUIRED = "specify the kind of resource this policy targets (e.g., 'Deployment', 'Service')"
NAME_REQUIRED = (
    "give this rule a name that is unique in its list, a lowercase DNS subdomain "
    "(e.g., 'create-deployment')"
)
NAME_INVALID_PREFIX = (
    "must be a valid DNS subdomain (lowercase alphanumeric and hyphens, start/end with "
    "alphanumeric): "
)
MATCH_REQUIRED = (
    "provide a CEL expression that determines when this rule applies "
    "(e.g., 'audit.verb == \"create\"')"
)
SUMMARY_REQUIRED = (
    "provide a template for the activity summary (e.g., '{{ actor }} created {{ kind }}')"
)
NO_RULES_WARNING = "policy has no rules defined and will have no effect"


@dataclass
class ValidationResult:
    """Errors (the policy is rejected) and warnings (it is accepted) of one or more policies."""

    errors: list[PolicyError] = field(default_factory=list)
    warnings: list[PolicyError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors."""
        return not self.errors

    def extend(self, other: ValidationResult) -> None:
        """Append another result's errors and warnings."""
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)


def dns1123_subdomain_errors(value: str) -> list[str]:
    """apimachinery ``IsDNS1123Subdomain``: the problems with ``value``, [] if it is valid."""
    errors = []
    if len(value.encode("utf-8")) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        errors.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters")
    if not _DNS1123_SUBDOMAIN.fullmatch(value):
        errors.append(_DNS1123_SUBDOMAIN_ERROR)
    return errors


def _quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def required(detail: str) -> str:
    """A Kubernetes ``Required value`` message."""
    return f"Required value: {detail}"


def invalid(value: str, detail: str) -> str:
    """A Kubernetes ``Invalid value`` message."""
    return f"Invalid value: {_quote(value)}: {detail}"


def duplicate(value: str) -> str:
    """A Kubernetes ``Duplicate value`` message."""
    return f"Duplicate value: {_quote(value)}"


def _check_match(source: str, rule_type: str) -> tuple[str, int | None] | None:
    """The match's problem and the offset in ``source`` it is about (None: unknown)."""
    from processor.policy import expressions

    try:
        message = expressions.validate_match(source, rule_type)
    except CelCompileError as exc:
        message = str(exc)
    if message is None:
        return None
    return message, expressions.error_offset(message, source)


def _check_summary(text: str, rule_type: str) -> tuple[str, int | None] | None:
    """The summary's first problem and the offset in ``text`` it is about (None: unknown)."""
    from processor.policy import expressions

    try:
        message = expressions.validate_summary(text, rule_type)
    except CelCompileError as exc:
        return str(exc), None
    if message is None:
        return None
    problem = expressions.summary_problem(text, rule_type)  # the position (errors only)
    return message, problem[1] if problem is not None and problem[0] == message else None


def _expression_error(
    policy: Policy, path: str, text: str, problem: tuple[str, int | None]
) -> PolicyError:
    """The error of an expression field, with a caret under the position in ``text``."""
    from processor.policy.expressions import excerpt

    message, offset = problem
    error = policy.error(path, invalid(text, message))
    if offset is not None:
        error.excerpt = excerpt(text, offset)
    return error


def _validate_rule(policy: Policy, rule: Rule) -> list[PolicyError]:
    path = policy.rule_path(rule)
    errors = []
    if not rule.name:
        errors.append(policy.error(f"{path}.name", required(NAME_REQUIRED)))
    else:
        problems = dns1123_subdomain_errors(rule.name)
        if problems:
            detail = NAME_INVALID_PREFIX + ", ".join(problems)
            errors.append(policy.error(f"{path}.name", invalid(rule.name, detail)))
    if not rule.match:
        errors.append(policy.error(f"{path}.match", required(MATCH_REQUIRED)))
    else:
        problem = _check_match(rule.match, rule.rule_type)
        if problem is not None:
            errors.append(_expression_error(policy, f"{path}.match", rule.match, problem))
    if not rule.summary:
        errors.append(policy.error(f"{path}.summary", required(SUMMARY_REQUIRED)))
    else:
        problem = _check_summary(rule.summary, rule.rule_type)
        if problem is not None:
            errors.append(_expression_error(policy, f"{path}.summary", rule.summary, problem))
    return errors


def _validate_rules(policy: Policy, rules: Iterable[Rule]) -> list[PolicyError]:
    errors = []
    first_index: dict[str, int] = {}
    for rule in rules:
        errors.extend(_validate_rule(policy, rule))
        if not rule.name:
            continue
        if rule.name in first_index:
            value = f"{rule.name} (conflicts with {rule.list_name}[{first_index[rule.name]}])"
            errors.append(policy.error(f"{policy.rule_path(rule)}.name", duplicate(value)))
        else:
            first_index[rule.name] = rule.index
    return errors


def validate_policy(policy: Policy) -> list[PolicyError]:
    """The API-server validation errors of a policy (docs/design.md#policy-engine-1-1), in upstream
    order.

    Args:
        policy: a loaded policy (see ``processor.policy.loader``).

    Returns:
        The errors, each with file, policy name, field path, document and line/column;
        [] when the policy is valid.
    """
    errors = []
    if not policy.kind:
        errors.append(policy.error(f"{policy.spec_path}.resource.kind", required(KIND_REQUIRED)))
    errors.extend(_validate_rules(policy, policy.audit_rules))
    errors.extend(_validate_rules(policy, policy.event_rules))
    return errors


def policy_warnings(policy: Policy) -> list[PolicyError]:
    """The API-server warnings of a policy: only "no rules defined"
    (docs/design.md#policy-engine-1-1, step 4)."""
    if not policy.audit_rules and not policy.event_rules:
        return [policy.error(policy.spec_path, NO_RULES_WARNING)]
    return []


def check_policy(policy: Policy) -> ValidationResult:
    """Errors and warnings of one policy."""
    return ValidationResult(validate_policy(policy), policy_warnings(policy))


def check_policies(policies: Iterable[Policy]) -> ValidationResult:
    """Errors and warnings of several policies, in order."""
    result = ValidationResult()
    for policy in policies:
        result.extend(check_policy(policy))
    return result
