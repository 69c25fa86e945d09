"""Loading ActivityPolicy YAML: documents, Lists, directories, positions and shape errors."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from processor.errors import PolicyError, PolicyErrors
from processor.policy import (
    Policy,
    load_paths,
    load_policies,
    parse_policy_text,
    parse_text,
    read_documents,
)


def policy_yaml(name: str = "p", kind: str = "Deployment", rules: str = "") -> str:
    body = textwrap.dedent(rules).strip("\n")
    text = textwrap.dedent(
        f"""\
        apiVersion: activity.miloapis.com/v1alpha1
        kind: ActivityPolicy
        metadata:
          name: {name}
        spec:
          resource:
            apiGroup: apps
            kind: {kind}
        """
    )
    if body:
        text += textwrap.indent(body, "  ") + "\n"
    return text


AUDIT_RULE = """
auditRules:
- name: create
  match: "audit.verb == 'create'"
  summary: "{{ actor }} created it"
"""


def errors_of(text: str) -> list[PolicyError]:
    with pytest.raises(PolicyErrors) as info:
        parse_policy_text(text, file="t.yaml")
    return info.value.errors


# --- documents -----------------------------------------------------------------------------


def test_single_document_builds_the_model():
    (policy,) = parse_policy_text(policy_yaml(rules=AUDIT_RULE), file="t.yaml")
    assert isinstance(policy, Policy)
    assert (policy.name, policy.api_group, policy.kind) == ("p", "apps", "Deployment")
    assert policy.file == "t.yaml" and policy.document == 0
    (rule,) = policy.audit_rules
    assert rule.name == "create" and rule.rule_type == "audit" and rule.index == 0
    assert rule.match == "audit.verb == 'create'"
    assert rule.description == ""
    assert policy.event_rules == ()
    assert policy.raw["metadata"]["name"] == "p"


def test_event_rules_get_event_type_and_indexes():
    text = policy_yaml(
        rules="""
        eventRules:
        - name: a
          match: "true"
          summary: x
        - name: b
          description: second
          match: "true"
          summary: y
        """
    )
    (policy,) = parse_policy_text(text)
    assert [(r.name, r.index, r.rule_type) for r in policy.event_rules] == [
        ("a", 0, "event"),
        ("b", 1, "event"),
    ]
    assert policy.event_rules[1].description == "second"


def test_multi_document_file_keeps_document_order_and_skips_empty_documents():
    text = "---\n" + policy_yaml("one") + "---\n# only a comment\n---\n" + policy_yaml("two")
    policies = parse_policy_text(text)
    assert [p.name for p in policies] == ["one", "two"]
    assert [p.document for p in policies] == [0, 2]


def test_empty_text_gives_no_policies():
    assert parse_policy_text("") == []
    assert parse_policy_text("# nothing\n---\n") == []


LIST = """\
apiVersion: v1
kind: List
items:
- apiVersion: activity.miloapis.com/v1alpha1
  kind: ActivityPolicy
  metadata: {name: a}
  spec:
    resource: {kind: Pod}
- apiVersion: activity.miloapis.com/v1alpha1
  kind: ActivityPolicy
  metadata: {name: b}
  spec:
    resource: {kind: Pod}
    auditRules:
    - name: create
      match: 'true'
      summary: s
"""


def test_kind_list_items_are_policies_with_their_own_positions():
    policies = parse_policy_text(LIST)
    assert [p.name for p in policies] == ["a", "b"]
    assert all(p.document == 0 for p in policies)
    assert policies[1].position("") == (9, 3)
    assert policies[1].position("spec.auditRules[0].name") == (15, 7)
    assert policies[0].position("spec.auditRules[0].name") == (7, 3)  # falls back to its spec


def test_activitypolicylist_is_accepted():
    text = "apiVersion: activity.miloapis.com/v1alpha1\nkind: ActivityPolicyList\nitems: []\n"
    assert parse_policy_text(text) == []


def test_list_with_a_foreign_item_is_an_error_at_the_item():
    text = "kind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
    (err,) = errors_of(text)
    assert "expected apiVersion: activity.miloapis.com/v1alpha1 and kind: ActivityPolicy" in (
        err.message
    )
    assert "List item 0" in err.message
    assert (err.line, err.column) == (4, 3)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n", '"ConfigMap"'),
        ("apiVersion: activity.miloapis.com/v1\nkind: ActivityPolicy\n", '"activity.miloapis'),
        ("metadata: {name: x}\nspec: {}\n", "null"),
    ],
)
def test_non_activitypolicy_documents_are_errors(text, fragment):
    (err,) = errors_of(text)
    assert "expected apiVersion: activity.miloapis.com/v1alpha1 and kind: ActivityPolicy" in (
        err.message
    )
    assert fragment in err.message
    assert err.file == "t.yaml" and err.document == 0 and err.line is not None


def test_a_document_that_is_not_a_mapping_is_an_error():
    (err,) = errors_of("- a\n- b\n")
    assert "must be a mapping" in err.message and "got list" in err.message


# --- YAML syntax ---------------------------------------------------------------------------


def test_yaml_syntax_error_has_line_and_column():
    text = policy_yaml() + "  auditRules:\n  - name: x\n    match: 'unterminated\n"
    (err,) = errors_of(text)
    assert err.message.startswith("invalid YAML: ")
    assert err.line is not None and err.column is not None
    assert err.line >= 10
    assert str(err).startswith(f"t.yaml:{err.line}:{err.column}: ")


def test_yaml_error_in_a_later_document_keeps_earlier_documents_and_document_index():
    text = policy_yaml("one") + "---\nkey: [unclosed\n"
    result = parse_text(text, "t.yaml")
    assert [p.name for p in result.policies] == ["one"]
    (err,) = result.errors
    assert err.document == 1


def test_tab_indentation_is_a_located_error():
    (err,) = errors_of("apiVersion: x\n\tkind: y\n")
    assert (err.line, err.column) == (2, 1)


def test_duplicate_keys_are_errors():
    text = policy_yaml(
        rules="""
        auditRules:
        - name: a
          match: "true"
          match: "false"
          summary: s
        """
    )
    (err,) = errors_of(text)
    assert err.path == "spec.auditRules[0].match"
    assert err.message.startswith("Duplicate value: ")
    assert (err.line, err.column) == (12, 5)


# --- positions -----------------------------------------------------------------------------


def test_positions_of_keys_and_items():
    text = policy_yaml(rules=AUDIT_RULE)
    (policy,) = parse_policy_text(text)
    lines = text.splitlines()
    assert policy.position("") == (1, 1)
    assert policy.position("spec.resource.kind") == (8, 5)
    assert lines[7].strip() == "kind: Deployment"
    assert policy.position("spec.auditRules") == (9, 3)
    assert policy.position("spec.auditRules[0]") == (10, 5)
    assert policy.position("spec.auditRules[0].summary") == (12, 5)
    assert lines[11].strip().startswith("summary:")


def test_missing_fields_fall_back_to_the_nearest_ancestor():
    text = policy_yaml(rules="auditRules:\n- match: 'true'\n  summary: s\n")
    (policy,) = parse_policy_text(text)
    assert policy.position("spec.auditRules[0].name", exact=True) is None
    assert policy.position("spec.auditRules[0].name") == policy.position("spec.auditRules[0]")
    assert policy.position("spec.eventRules[3].name") == policy.position("spec")


def test_read_documents_exposes_positions_for_other_manifests():
    docs, errors = read_documents("a:\n  b:\n  - x: 1\n    y: 2\n", "f.yaml")
    assert errors == []
    (doc,) = docs
    assert doc.positions["a.b[0].y"] == (4, 5)
    assert doc.data == {"a": {"b": [{"x": 1, "y": 2}]}}


def test_recursive_alias_does_not_hang():
    docs, errors = read_documents("a: &x [*x]\n")
    assert errors == [] and len(docs) == 1


# --- shapes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rules", "path", "fragment"),
    [
        ("auditRules: {name: x}", "spec.auditRules", "must be a list of rules, got mapping"),
        ("eventRules: 3", "spec.eventRules", "got number"),
        ("auditRules:\n- just a string", "spec.auditRules[0]", "must be a mapping, got string"),
        (
            "auditRules:\n- name: a\n  match: true\n  summary: s",
            "spec.auditRules[0].match",
            'must be a string, got boolean; quote it in YAML, e.g. match: "true"',
        ),
        (
            "auditRules:\n- name: 12345\n  match: 'true'\n  summary: s",
            "spec.auditRules[0].name",
            'got number; quote it in YAML, e.g. name: "12345"',
        ),
        (
            "auditRules:\n- name: a\n  match: 'true'\n  summary: [a, b]",
            "spec.auditRules[0].summary",
            "must be a string, got list",
        ),
    ],
)
def test_shape_errors_are_reported_at_their_path(rules, path, fragment):
    (err,) = errors_of(policy_yaml(rules=rules))
    assert err.path == path
    assert err.message.startswith("Invalid value: ")
    assert fragment in err.message
    assert err.policy == "p" and err.line is not None


def test_spec_and_resource_must_be_mappings():
    text = "apiVersion: activity.miloapis.com/v1alpha1\nkind: ActivityPolicy\nspec: [1]\n"
    (err,) = errors_of(text)
    assert (err.path, err.line, err.column) == ("spec", 3, 1)
    text = text.replace("spec: [1]", "spec:\n  resource: x")
    (err,) = errors_of(text)
    assert err.path == "spec.resource" and "must be a mapping" in err.message


def test_all_shape_errors_of_a_document_are_collected():
    text = policy_yaml(rules="auditRules:\n- name: 1\n  match: 2\n  summary: 3\neventRules: x")
    errors = errors_of(text)
    assert [e.path for e in errors] == [
        "spec.auditRules[0].name",
        "spec.auditRules[0].match",
        "spec.auditRules[0].summary",
        "spec.eventRules",
    ]


def test_null_fields_count_as_absent():
    text = policy_yaml(rules="auditRules:\n- name: a\n  description:\n  match: x\n  summary: y\n")
    (policy,) = parse_policy_text(text)
    assert policy.audit_rules[0].description == ""
    text = "apiVersion: activity.miloapis.com/v1alpha1\nkind: ActivityPolicy\nspec:\n"
    (policy,) = parse_policy_text(text)
    assert (policy.name, policy.kind, policy.rules) == ("", "", ())


def test_unknown_fields_are_warnings_not_errors():
    text = policy_yaml(rules="auditRules:\n- name: a\n  match: x\n  sumary: y\n  summary: z\n")
    result = parse_text(text, "t.yaml")
    assert result.errors == [] and len(result.policies) == 1
    (warning,) = result.warnings
    assert warning.path == "spec.auditRules[0].sumary"
    assert 'unknown field "sumary"' in warning.message
    assert warning.line == 12


def test_from_spec_for_preview_manifests():
    text = textwrap.dedent(
        """\
        apiVersion: activity.miloapis.com/v1alpha1
        kind: PolicyPreview
        spec:
          policy:
            resource: {apiGroup: '', kind: Pod}
            auditRules:
            - name: a
              match: 'true'
              summary: s
        """
    )
    (doc,), _ = read_documents(text, "preview.yaml")
    policy = Policy.from_spec(
        doc.data["spec"]["policy"],
        file="preview.yaml",
        document=doc.index,
        positions=doc.positions,
        spec_path="spec.policy",
    )
    assert policy.kind == "Pod" and policy.rule_path(policy.audit_rules[0]) == (
        "spec.policy.auditRules[0]"
    )
    assert policy.position("spec.policy.auditRules[0].summary") == (9, 7)
    with pytest.raises(PolicyErrors) as info:
        Policy.from_spec({"auditRules": "nope"}, spec_path="spec.policy")
    assert info.value.errors[0].path == "spec.policy.auditRules"


def test_policies_are_immutable_and_comparable():
    (a,) = parse_policy_text(policy_yaml(rules=AUDIT_RULE))
    (b,) = parse_policy_text("# moved\n" + policy_yaml(rules=AUDIT_RULE))
    assert a == b  # positions and raw do not take part in equality
    with pytest.raises(AttributeError):
        a.name = "x"  # type: ignore[misc]


# --- files and directories -----------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_directories_load_recursively_in_sorted_path_order(tmp_path):
    write(tmp_path / "b.yaml", policy_yaml("b"))
    write(tmp_path / "a" / "z.yml", policy_yaml("a-z"))
    write(tmp_path / "a" / "m.yaml", policy_yaml("a-m1") + "---\n" + policy_yaml("a-m2"))
    write(tmp_path / "c.txt", "not yaml: [")
    write(tmp_path / ".hidden" / "x.yaml", policy_yaml("hidden"))
    policies = load_policies([tmp_path])
    assert [p.name for p in policies] == ["a-m1", "a-m2", "a-z", "b"]
    assert policies[0].file == str(tmp_path / "a" / "m.yaml")


def test_path_order_is_argument_order_and_files_are_read_once(tmp_path):
    one = write(tmp_path / "z.yaml", policy_yaml("z"))
    write(tmp_path / "a.yaml", policy_yaml("a"))
    policies = load_policies([one, tmp_path])
    assert [p.name for p in policies] == ["z", "a"]


def test_an_explicit_file_is_read_whatever_its_suffix(tmp_path):
    path = write(tmp_path / "policy.txt", policy_yaml("txt"))
    assert [p.name for p in load_policies([str(path)])] == ["txt"]


def test_load_policies_raises_all_errors_of_all_files(tmp_path):
    write(tmp_path / "a.yaml", "kind: ConfigMap\n")
    write(tmp_path / "b.yaml", "a: [\n")
    write(tmp_path / "c.yaml", policy_yaml("ok"))
    with pytest.raises(PolicyErrors) as info:
        load_policies([tmp_path, tmp_path / "missing.yaml"])
    files = [Path(e.file).name for e in info.value.errors]
    assert files == ["missing.yaml", "a.yaml", "b.yaml"]
    assert "no such file or directory" in info.value.errors[0].message
    result = load_paths([tmp_path])
    assert [p.name for p in result.policies] == ["ok"] and len(result.errors) == 2


def test_unreadable_bytes_are_an_error(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xff\xfe\x00bad")
    result = load_paths([path])
    assert "not UTF-8" in result.errors[0].message


def test_error_string_has_file_line_column_policy_and_path():
    (err,) = errors_of(policy_yaml(rules="auditRules: 5"))
    assert re.match(r"t\.yaml:9:3: p: spec\.auditRules: Invalid value: 5: ", str(err))


# --- the real corpus -----------------------------------------------------------------------


def test_every_corpus_file_loads(real_policies_dir):
    result = load_paths([real_policies_dir])
    assert result.errors == []
    assert len(result.policies) == len(list(real_policies_dir.rglob("*.yaml")))


def test_corpus_matches_its_readme_table(real_policies_dir):
    rows = re.findall(
        r"^\| (\S+\.yaml) \| (\S+) \| (\S*)/(\S+) \| (\d+) \| (\d+) \|$",
        (real_policies_dir / "README.md").read_text(),
        re.MULTILINE,
    )
    assert len(rows) >= 50
    for file, name, group, kind, audit, event in rows:
        (policy,) = load_policies([real_policies_dir / file])
        got = (policy.name, policy.api_group, policy.kind)
        assert got == (name, group, kind), file
        assert (len(policy.audit_rules), len(policy.event_rules)) == (int(audit), int(event))
