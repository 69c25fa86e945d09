"""Open a sink from a URL: ``chdb://``, ``clickhouse://`` or ``memory://``.

* ``chdb:///path/to/dir`` embedded chDB in that directory (``chdb://relative/dir`` is relative to
  the working directory); ``chdb://`` alone uses a temporary directory removed on close.
  Query option: ``defer_skip_indexes`` (``1`` default: skip indexes are built by merges, not by
  each insert; ``0`` builds them at insert time; see ``processor/sink/chdb.py``).
* ``clickhouse://user:password@host:9000/database?compression=lz4&secure=0`` a ClickHouse server
  over the native protocol; the path names the database (else the ``database`` argument).
  Query options: ``compression`` (``lz4`` default, ``zstd``, ``none``), ``secure``,
  ``connect_timeout``, ``send_receive_timeout``.
* ``memory://`` the in-memory test sink.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from processor.sink.base import DEFAULT_DATABASE, Sink

SCHEMES = ("chdb", "clickhouse", "memory")


def default_data_dir() -> Path:
    """Where embedded state lives: ``$ACTIVITY_DATA_DIR`` or ``~/.local/share/activity``."""
    env = os.environ.get("ACTIVITY_DATA_DIR")
    return Path(env) if env else Path.home() / ".local" / "share" / "activity"


def default_clickhouse_url() -> str:
    """``$ACTIVITY_CLICKHOUSE_URL``, else chDB in ``<data dir>/chdb``."""
    return os.environ.get("ACTIVITY_CLICKHOUSE_URL") or f"chdb://{default_data_dir() / 'chdb'}"


def open_sink(url: str, *, database: str = DEFAULT_DATABASE, **options: Any) -> Sink:
    """Create the sink a URL names (not connected yet: call ``open()`` or ``migrate()``).

    Args:
        url: ``chdb://[path]``, ``clickhouse://[user[:pw]@]host[:port][/db][?opts]`` or
            ``memory://``.
        database: the database holding the tables (a ``clickhouse://`` path overrides it).
        **options: passed to the sink class (e.g. ``tables=`` to target other table names).

    Raises:
        ValueError: an unknown scheme (the message lists the supported ones) or a bad option.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in SCHEMES:
        supported = ", ".join(f"{s}://" for s in SCHEMES)
        raise ValueError(f"unsupported sink URL {url!r}: use one of {supported}")
    if scheme == "memory":
        from processor.sink.memory import MemorySink

        return MemorySink(database=database, **options)
    if scheme == "chdb":
        from processor.sink.chdb import ChdbSink

        path, _, query_text = rest.partition("?")
        query = _query(query_text)
        kwargs: dict[str, Any] = {}
        if "defer_skip_indexes" in query:
            kwargs["defer_skip_indexes"] = _flag(query.pop("defer_skip_indexes"))
        _no_more_options("chdb", query)
        return ChdbSink(unquote(path) or None, database=database, **{**kwargs, **options})
    return _clickhouse(url, database, options)


def _clickhouse(url: str, database: str, options: dict[str, Any]) -> Sink:
    from processor.sink.clickhouse import ClickHouseSink

    parts = urlsplit(url)
    query = _query(parts.query)
    compression = query.pop("compression", "lz4")
    kwargs: dict[str, Any] = {
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 9000,
        "user": unquote(parts.username) if parts.username else "default",
        "password": unquote(parts.password) if parts.password else "",
        "database": parts.path.strip("/") or database,
        "compression": None if compression in ("", "none", "false", "0") else compression,
        "secure": _flag(query.pop("secure", "0")),
    }
    for name in ("connect_timeout", "send_receive_timeout"):
        if name in query:
            kwargs[name] = float(query.pop(name))
    _no_more_options("clickhouse", query)
    kwargs.update(options)
    return ClickHouseSink(**kwargs)


def _query(text: str) -> dict[str, str]:
    """A URL's query options (the last value of a repeated one)."""
    return {k: v[-1] for k, v in parse_qs(text).items()}


def _no_more_options(scheme: str, query: dict[str, str]) -> None:
    """Reject the options left in ``query`` after the known ones were taken."""
    if query:
        raise ValueError(f"unknown {scheme}:// option(s): {', '.join(sorted(query))}")


def _flag(value: str) -> bool:
    """A URL option's boolean: ``1``/``true``/``yes`` or ``0``/``false``/``no``."""
    text = value.lower()
    if text in ("1", "true", "yes"):
        return True
    if text in ("0", "false", "no", ""):
        return False
    raise ValueError(f"not a boolean URL option value: {value!r} (use 1 or 0)")
