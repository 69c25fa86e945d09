"""Load ActivityPolicy YAML from files, directories and text, keeping source positions.

Directories are walked recursively for ``*.yaml`` / ``*.yml`` files in sorted path order (hidden
files and directories are skipped); policies come out in file order, then document order
(docs/design.md#d8). A file may hold several documents, and a document may be a ``kind: List`` (as
``kubectl get -o yaml`` prints) whose ``items`` are policies. Empty documents are skipped.

Every problem becomes a :class:`PolicyError` with file, document, field path and line/column: YAML
syntax errors, documents that are not ActivityPolicies, and fields of the wrong shape. The loading
functions collect all of them; :func:`load_policies` raises them together as
:class:`PolicyErrors`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from processor.errors import PolicyError, PolicyErrors
from processor.policy.model import (
    Policy,
    Positions,
    child_path,
    describe_value,
    spec_to_policy,
    type_name,
)

API_VERSION = "activity.miloapis.com/v1alpha1"
KIND = "ActivityPolicy"
LIST_KINDS = ("List", "ActivityPolicyList")
YAML_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class YamlDocument:
    """One non-empty YAML document of a file.

    Attributes:
        data: the constructed value (normally a mapping).
        positions: field path -> (line, column) of every mapping key and sequence item.
        index: the document's index in its file (0-based, empty documents included).
    """

    data: Any
    positions: dict[str, tuple[int, int]]
    index: int


@dataclass
class LoadResult:
    """Policies loaded from some source, with every error and warning found on the way."""

    policies: list[Policy] = field(default_factory=list)
    errors: list[PolicyError] = field(default_factory=list)
    warnings: list[PolicyError] = field(default_factory=list)

    def extend(self, other: LoadResult) -> None:
        """Append another result's policies, errors and warnings (order is kept)."""
        self.policies.extend(other.policies)
        self.errors.extend(other.errors)
        self.warnings.extend(other.warnings)

    def raise_for_errors(self) -> None:
        """Raise :class:`PolicyErrors` with all errors, if there are any."""
        if self.errors:
            raise PolicyErrors(list(self.errors))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _collect_positions(
    node: yaml.Node,
    path: str,
    out: dict[str, tuple[int, int]],
    dup_keys: list[tuple[str, tuple[int, int]]],
    stack: set[int],
) -> None:
    """Record the position of every key and item under ``node``; note duplicate mapping keys."""
    if id(node) in stack:  # a recursive alias
        return
    out.setdefault(path, _mark(node))
    stack.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key_path = child_path(path, key_node.value)
            if key_node.value in seen:
                dup_keys.append((key_path, _mark(key_node)))
            seen.add(key_node.value)
            out[key_path] = _mark(key_node)
            _collect_positions(value_node, key_path, out, dup_keys, stack)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            item_path = child_path(path, i)
            out[item_path] = _mark(item)
            _collect_positions(item, item_path, out, dup_keys, stack)
    stack.discard(id(node))


def _yaml_error(exc: yaml.YAMLError, file: str, document: int) -> PolicyError:
    line = column = None
    message = f"invalid YAML: {exc}"
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            line, column = mark.line + 1, mark.column + 1
        parts = [p for p in (exc.context, exc.problem) if p]
        message = "invalid YAML: " + ", ".join(parts) + "; fix the YAML syntax at this position"
    return PolicyError(message, file=file, document=document, line=line, column=column)


def read_documents(text: str, file: str = "") -> tuple[list[YamlDocument], list[PolicyError]]:
    """Parse YAML text into documents with source positions.

    Parsing stops at the first syntax error (YAML cannot resynchronise); documents before it are
    returned. A key repeated in one mapping is an error (Kubernetes rejects it too).

    Args:
        text: the YAML source, possibly several ``---``-separated documents.
        file: the file name to put in errors.

    Returns:
        ``(documents, errors)``; empty documents are left out but still counted in ``index``.
    """
    documents: list[YamlDocument] = []
    errors: list[PolicyError] = []
    loader = yaml.SafeLoader(text)
    index = 0
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node)
            if data is not None:
                positions: dict[str, tuple[int, int]] = {}
                dups: list[tuple[str, tuple[int, int]]] = []
                _collect_positions(node, "", positions, dups, set())
                for path, (line, column) in dups:
                    errors.append(
                        PolicyError(
                            "Duplicate value: this key appears more than once in its mapping and "
                            "only the last one would be used; remove or rename the other",
                            path=path,
                            file=file,
                            document=index,
                            line=line,
                            column=column,
                        )
                    )
                documents.append(YamlDocument(data, positions, index))
            index += 1
    except yaml.YAMLError as exc:
        errors.append(_yaml_error(exc, file, index))
    finally:
        loader.dispose()
    return documents, errors


def _rebase(positions: Positions, prefix: str) -> dict[str, tuple[int, int]]:
    """Positions under ``prefix`` (e.g. ``items[3]``), re-keyed relative to it."""
    if not prefix:
        return dict(positions)
    out = {}
    for path, pos in positions.items():
        if path == prefix:
            out[""] = pos
        elif path.startswith(prefix + ".") or path.startswith(prefix + "["):
            rest = path[len(prefix) :]
            out[rest[1:] if rest.startswith(".") else rest] = pos
    return out


def _policy_from_object(
    obj: Any, positions: Positions, file: str, document: int, where: str
) -> LoadResult:
    """Read one ActivityPolicy object (a document, or an item of a List)."""
    result = LoadResult()

    def error(path: str, message: str) -> None:
        line, column = positions.get(path) or positions.get("") or (None, None)
        result.errors.append(
            PolicyError(message, path=path, file=file, document=document, line=line, column=column)
        )

    if not isinstance(obj, dict):
        error(
            "",
            f"Invalid value: {describe_value(obj, 40)}: {where} must be a mapping (an "
            f"ActivityPolicy object), got {type_name(obj)}",
        )
        return result
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if api_version != API_VERSION or kind != KIND:
        error(
            "kind" if "kind" in obj else "",
            f"Invalid value: {where} has apiVersion {describe_value(api_version)} and kind "
            f"{describe_value(kind)}; expected apiVersion: {API_VERSION} and kind: {KIND} "
            f"(only ActivityPolicy documents can be loaded here)",
        )
        return result
    metadata = obj.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        error("metadata", f"Invalid value: metadata must be a mapping, got {type_name(metadata)}")
        return result
    name = metadata.get("name")
    if name is not None and not isinstance(name, str):
        error("metadata.name", f"Invalid value: {describe_value(name)}: must be a string")
        return result
    policy, errors, warnings = spec_to_policy(
        obj.get("spec"),
        name=name or "",
        file=file,
        document=document,
        raw=obj,
        positions=positions,
    )
    if policy is not None:
        result.policies.append(policy)
    result.errors.extend(errors)
    result.warnings.extend(warnings)
    return result


def policies_from_document(doc: YamlDocument, file: str = "") -> LoadResult:
    """The policies of one YAML document: an ActivityPolicy, or a List of them."""
    data = doc.data
    if isinstance(data, dict) and data.get("kind") in LIST_KINDS and "items" in data:
        result = LoadResult()
        items = data.get("items") or []
        if not isinstance(items, list):
            line, column = doc.positions.get("items", (None, None))
            result.errors.append(
                PolicyError(
                    f"Invalid value: items must be a list of ActivityPolicy objects, "
                    f"got {type_name(items)}",
                    path="items",
                    file=file,
                    document=doc.index,
                    line=line,
                    column=column,
                )
            )
            return result
        for i, item in enumerate(items):
            prefix = child_path("items", i)
            positions = _rebase(doc.positions, prefix)
            where = f"{data['kind']} item {i}"
            result.extend(_policy_from_object(item, positions, file, doc.index, where))
        return result
    return _policy_from_object(data, doc.positions, file, doc.index, f"document {doc.index}")


def parse_text(text: str, file: str = "") -> LoadResult:
    """Load the policies in a YAML text without raising (see :func:`parse_policy_text`)."""
    documents, errors = read_documents(text, file)
    result = LoadResult()
    for doc in documents:
        result.extend(policies_from_document(doc, file))
    result.errors.extend(errors)
    result.errors.sort(key=lambda e: (e.document or 0, e.line or 0, e.column or 0))
    return result


def parse_policy_text(text: str, file: str = "") -> list[Policy]:
    """Load the ActivityPolicies in a YAML text (one or more documents, or a List).

    Args:
        text: the YAML source.
        file: the file name to put in errors ("" for text that did not come from a file).

    Returns:
        The policies in document order (not yet validated).

    Raises:
        PolicyErrors: every syntax, kind or shape error found.
    """
    result = parse_text(text, file)
    result.raise_for_errors()
    return result.policies


def load_file(path: str | Path) -> LoadResult:
    """Load the policies of one file without raising; unreadable files become errors."""
    file = str(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return LoadResult(errors=[PolicyError(f"cannot read file: {reason}", file=file)])
    except UnicodeDecodeError as exc:
        return LoadResult(
            errors=[PolicyError(f"cannot read file: not UTF-8 text ({exc.reason})", file=file)]
        )
    return parse_text(text, file)


def policy_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[PolicyError]]:
    """Expand files and directories into the ordered list of policy files to read.

    Files named explicitly are used whatever their suffix; directories contribute their
    ``*.yaml`` / ``*.yml`` files, recursively, in sorted order. A file reached twice is used once.

    Returns:
        ``(files, errors)``; a path that does not exist is an error.
    """
    files: list[Path] = []
    errors: list[PolicyError] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob("*")
                if p.suffix in YAML_SUFFIXES
                and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        elif path.exists():
            found = [path]
        else:
            errors.append(PolicyError("no such file or directory", file=str(path)))
            continue
        for p in found:
            key = p.resolve()
            if key not in seen:
                seen.add(key)
                files.append(p)
    return files, errors


def load_paths(paths: Iterable[str | Path]) -> LoadResult:
    """Load every policy under ``paths`` without raising (see :func:`load_policies`)."""
    files, errors = policy_files(paths)
    result = LoadResult(errors=errors)
    for file in files:
        result.extend(load_file(file))
    return result


def load_policies(paths: Iterable[str | Path]) -> list[Policy]:
    """Load the ActivityPolicies in files and directories, in file then document order.

    Args:
        paths: policy files and/or directories (searched recursively for ``*.yaml``/``*.yml``).

    Returns:
        The policies (well-formed but not yet validated; see ``validate_policy``).

    Raises:
        PolicyErrors: all the errors found in all the files.
    """
    result = load_paths(paths)
    result.raise_for_errors()
    return result.policies
