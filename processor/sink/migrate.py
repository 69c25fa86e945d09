"""Versioned schema migrations (``activity migrate``), upstream's runner reimplemented.

Files ``NNN_name.sql`` in ``processor/sink/migrations`` are applied in version order; statements
are separated by a ``;`` at the end of a line. Each applied file is recorded in
``<db>.schema_migrations(version, name, applied_at, checksum)`` with the sha256 of the file as
shipped (not of its rendering, so the options below never look like drift). A recorded version is
skipped; a recorded checksum that differs from the file is a :class:`MigrationError` naming the
file (a shipped migration was edited: never re-applied silently). Running twice applies nothing.

Our versions start at 100 so they never collide with upstream's 001-009 in a database that
upstream's runner migrated: there our ``CREATE ... IF NOT EXISTS`` files find the final tables
already present, are recorded, and change nothing.

Rendering (one file serves every deployment):

* placeholders ``${DB}`` (database), ``${REPLACING}`` (``ReplacingMergeTree`` or
  ``ReplicatedReplacingMergeTree``), ``${CLUSTER}``, ``${STORAGE_POLICY}``, ``${DEDUP_WINDOW}``
  (``non_replicated_deduplication_window``, blocks); an unknown placeholder is an error;
* line directives ``--@replicated <sql>`` and ``--@tiered <sql>``: the SQL after the directive is
  kept only with ``replicated=True`` (Replicated database, ON CLUSTER) or a ``storage_policy``
  (``TTL ... TO VOLUME 'cold'`` and the policy on audit_logs; the policy needs a volume ``cold``);
  otherwise the line is dropped;
* ``--@requires X.Y``: the file needs ClickHouse >= X.Y; on an older server it is skipped, not
  recorded, and applied by a later run after an upgrade (used by the ngram text index).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from processor.errors import ProcessorError
from processor.sink.base import DEFAULT_DATABASE, Sink, check_identifier, sql_string

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
_PLACEHOLDER = re.compile(r"\$\{([A-Z_]+)\}")
_DIRECTIVE = re.compile(r"^--@(\w+)(?:\s(.*))?$")
_STATEMENT_END = re.compile(r";[ \t]*$", re.MULTILINE)
DEFAULT_DEDUP_WINDOW = 10_000


class MigrationError(ProcessorError):
    """A migration cannot be applied (bad file, checksum drift, failed statement)."""


@dataclass(frozen=True)
class RenderOptions:
    """How the migration files are rendered.

    Attributes:
        database: the database name (``${DB}``).
        replicated: Replicated database + ReplicatedReplacingMergeTree engines.
        storage_policy: a tiered storage policy for audit_logs (hot volume, then ``cold``).
        cluster: the cluster for ``ON CLUSTER`` (replicated only).
        dedup_window: ``non_replicated_deduplication_window`` of the single-node tables.
    """

    database: str = DEFAULT_DATABASE
    replicated: bool = False
    storage_policy: str | None = None
    cluster: str = "activity"
    dedup_window: int = DEFAULT_DEDUP_WINDOW

    def values(self) -> dict[str, str]:
        """The placeholder values."""
        return {
            "DB": check_identifier(self.database, "database"),
            "REPLACING": ("Replicated" if self.replicated else "") + "ReplacingMergeTree",
            "CLUSTER": self.cluster,
            "STORAGE_POLICY": self.storage_policy or "",
            "DEDUP_WINDOW": str(int(self.dedup_window)),
        }


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    text: str
    checksum: str
    requires: tuple[int, ...] | None = None

    def render(self, options: RenderOptions) -> list[str]:
        """The statements of this file rendered for ``options``."""
        return split_statements(render(self.text, options, self.name))


@dataclass
class MigrationResult:
    """What :func:`migrate` did; names are file names without ``.sql``."""

    applied: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    unsupported: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line: counts of applied, already applied and unsupported migrations."""
        line = f"{len(self.applied)} applied, {len(self.skipped)} already applied"
        if self.unsupported:
            line += f", {len(self.unsupported)} skipped (server too old)"
        return line


def render(text: str, options: RenderOptions, name: str = "<sql>") -> str:
    """Apply line directives and placeholders to migration text (see the module docstring)."""
    keep = {"replicated": options.replicated, "tiered": bool(options.storage_policy)}
    lines = []
    for line in text.splitlines():
        match = _DIRECTIVE.match(line.strip())
        if match is None:
            lines.append(line)
            continue
        directive, rest = match.group(1), match.group(2) or ""
        if directive == "requires":
            continue
        if directive not in keep:
            raise MigrationError(f"{name}: unknown directive --@{directive}")
        if keep[directive]:
            lines.append("    " + rest)
    values = options.values()

    def substitute(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise MigrationError(f"{name}: unknown placeholder ${{{key}}}")
        return values[key]

    return _PLACEHOLDER.sub(substitute, "\n".join(lines) + "\n")


def split_statements(sql: str) -> list[str]:
    """Split on ``;`` at line ends; drop chunks that hold only comments or blanks."""
    statements = []
    for chunk in _STATEMENT_END.split(sql):
        code = [ln for ln in chunk.splitlines() if ln.strip() and not ln.strip().startswith("--")]
        if code:
            statements.append(chunk.strip())
    return statements


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """The migration files of ``directory`` (default: the bundled ones), by version."""
    if directory is None:
        base = resources.files("processor.sink") / "migrations"
        files = [(p.name, p.read_bytes()) for p in base.iterdir() if p.name.endswith(".sql")]
    else:
        files = [(p.name, p.read_bytes()) for p in directory.iterdir() if p.suffix == ".sql"]
    migrations: dict[int, Migration] = {}
    for filename, data in sorted(files):
        match = _FILE.match(filename)
        if match is None:
            raise MigrationError(f"{filename}: migration files are named NNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{filename}: version {version} is used twice")
        text = data.decode("utf-8")
        migrations[version] = Migration(
            version, filename[:-4], text, hashlib.sha256(data).hexdigest(), _requires(text)
        )
    return [migrations[v] for v in sorted(migrations)]


def _requires(text: str) -> tuple[int, ...] | None:
    for line in text.splitlines():
        match = _DIRECTIVE.match(line.strip())
        if match and match.group(1) == "requires":
            return tuple(int(x) for x in (match.group(2) or "").strip().split("."))
    return None


def applied_migrations(sink: Sink, database: str) -> dict[int, tuple[str, str]]:
    """Recorded migrations of ``database``: version -> (name, checksum); {} before the first."""
    exists = sink.query(
        "SELECT count() AS n FROM system.tables "
        "WHERE database = {db:String} AND name = 'schema_migrations'",
        {"db": database},
    )
    if not int(exists[0]["n"]):
        return {}
    rows = sink.query(
        f"SELECT version, name, checksum FROM {database}.schema_migrations FINAL ORDER BY version"
    )
    return {int(r["version"]): (r["name"], r["checksum"]) for r in rows}


def server_version(sink: Sink) -> tuple[int, ...]:
    """The server's version as a tuple of ints, from ``SELECT version()``."""
    text = str(sink.query("SELECT version() AS v")[0]["v"])
    return tuple(int(x) for x in re.findall(r"\d+", text)[:3])


def migrate(
    sink: Sink,
    *,
    replicated: bool = False,
    storage_policy: str | None = None,
    database: str | None = None,
    directory: Path | None = None,
    on_applied: Callable[[Migration], None] | None = None,
) -> MigrationResult:
    """Apply the pending migrations to ``sink`` (it need not be opened first).

    Args:
        sink: the target; a memory sink has no schema and is left alone.
        replicated, storage_policy: rendering options (see :class:`RenderOptions`).
        database: defaults to ``sink.database``.
        directory: migration files to use instead of the bundled ones (tests).
        on_applied: called after each migration is applied and recorded.

    Raises:
        MigrationError: checksum drift, a bad file or a failing statement (naming the file).
    """
    result = MigrationResult()
    if sink.name == "memory":
        log.debug("memory sink: no schema to migrate")
        return result
    db = str(database or getattr(sink, "database", DEFAULT_DATABASE))
    options = RenderOptions(database=db, replicated=replicated, storage_policy=storage_policy)
    migrations = load_migrations(directory)
    done = applied_migrations(sink, db)
    version = server_version(sink)
    for migration in migrations:
        if migration.version in done:
            _check_checksum(migration, done[migration.version])
            result.skipped.append(migration.name)
        elif migration.requires and version < migration.requires:
            log.warning("%s needs ClickHouse >= %s; skipped", migration.name, migration.requires)
            result.unsupported.append(migration.name)
        else:
            _apply(sink, migration, options)
            result.applied.append(migration.name)
            if on_applied is not None:
                on_applied(migration)
    log.info("migrations on %s: %s", db, result.summary())
    return result


def _check_checksum(migration: Migration, recorded: tuple[str, str]) -> None:
    name, checksum = recorded
    if checksum != migration.checksum:
        raise MigrationError(
            f"{migration.name}.sql: checksum {migration.checksum[:12]} differs from the one "
            f"recorded when it was applied ({checksum[:12]}, as {name!r}); shipped migrations "
            "must not be edited: add a new migration file instead"
        )


def _apply(sink: Sink, migration: Migration, options: RenderOptions) -> None:
    for statement in migration.render(options):
        try:
            sink.execute(statement)
        except ProcessorError as exc:
            raise MigrationError(f"{migration.name}.sql failed: {exc}") from exc
    sink.execute(
        f"INSERT INTO {options.database}.schema_migrations (version, name, checksum) VALUES "
        f"({migration.version}, {sql_string(migration.name)}, {sql_string(migration.checksum)})"
    )
    log.info("applied migration %s", migration.name)
