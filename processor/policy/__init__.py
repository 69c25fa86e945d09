"""ActivityPolicy model, loading, validation and linting.

Typical use::

    from processor.policy import load_policies, validate_policy

    policies = load_policies(["policies/"])          # raises PolicyErrors on bad files
    errors = [e for p in policies for e in validate_policy(p)]

Every error is a :class:`processor.errors.PolicyError` carrying file, document, policy name, field
path (``spec.auditRules[2].match``) and line/column.
"""

from processor.policy.loader import (
    LoadResult,
    YamlDocument,
    load_file,
    load_paths,
    load_policies,
    parse_policy_text,
    parse_text,
    read_documents,
)
from processor.policy.model import Policy, Rule, spec_to_policy
from processor.policy.validate import (
    ValidationResult,
    check_policies,
    check_policy,
    policy_warnings,
    validate_policy,
)

__all__ = [
    "LoadResult",
    "Policy",
    "Rule",
    "ValidationResult",
    "YamlDocument",
    "check_policies",
    "check_policy",
    "load_file",
    "load_paths",
    "load_policies",
    "parse_policy_text",
    "parse_text",
    "policy_warnings",
    "read_documents",
    "spec_to_policy",
    "validate_policy",
]
