"""Per-object reconciler state in a NATS KV bucket, with a write-back cache.

One key per inventory object (``<kindlower>.<name>``, e.g. ``circuit.ams-fra-1``), the value the
JSON of :class:`~processor.reconciler.transitions.ObjectState`. The service changes states in
memory, marks them dirty, and :meth:`StateStore.flush` writes every dirty state before the input
that changed them is acknowledged: after a restart, a record that was acknowledged has its effect
in the bucket, and one that was not is redelivered and applied again (the ordering guard in the
state makes that a no-op when the write had already landed).
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, NoKeysError

from processor.errors import ProcessorError
from processor.reconciler.transitions import ObjectState

__all__ = ["StateError", "StateStore", "open_bucket"]

log = logging.getLogger(__name__)


class StateError(ProcessorError):
    """The state bucket could not be read or written (NATS unavailable: retriable)."""

    retriable = True


async def open_bucket(js: Any, bucket: str, *, create: bool = True) -> Any:
    """The KV bucket ``bucket``, created (history 1, file storage) when missing and ``create``.

    Raises:
        StateError: the bucket is missing and ``create`` is False, or NATS failed.
    """
    try:
        return await js.key_value(bucket)
    except BucketNotFoundError:
        if not create:
            raise StateError(f"state bucket {bucket!r} does not exist") from None
    except Exception as exc:
        raise StateError(f"state bucket {bucket!r}: {exc}") from exc
    try:
        return await js.create_key_value(bucket=bucket, history=1)
    except Exception as exc:
        raise StateError(f"cannot create state bucket {bucket!r}: {exc}") from exc


class StateStore:
    """Object states: loaded from the bucket on first use, written back by :meth:`flush`.

    Args:
        kv: a nats-py ``KeyValue``.
    """

    def __init__(self, kv: Any) -> None:
        self.kv = kv
        self._cache: dict[str, ObjectState] = {}
        self._dirty: set[str] = set()
        self._deleted: set[str] = set()

    @property
    def dirty(self) -> int:
        """States changed in memory and not yet written."""
        return len(self._dirty) + len(self._deleted)

    async def get(self, kind: str, name: str) -> ObjectState:
        """The state of an object (a fresh one when the bucket has none).

        Raises:
            StateError: the bucket could not be read.
        """
        key = f"{kind.lower()}.{name}"
        state = self._cache.get(key)
        if state is not None:
            return state
        fresh = key in self._deleted  # deleted in this process: the bucket may still have it
        state = (None if fresh else await self._load(key)) or ObjectState(kind=kind, name=name)
        self._cache[key] = state
        return state

    async def _load(self, key: str) -> ObjectState | None:
        try:
            entry = await self.kv.get(key)
        except KeyNotFoundError:
            return None
        except Exception as exc:
            raise StateError(f"reading state {key!r}: {exc}") from exc
        if not entry.value:
            return None
        try:
            return ObjectState.from_json(orjson.loads(entry.value))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("state %r is unreadable, starting afresh: %s", key, exc)
            return None

    def mark(self, state: ObjectState) -> None:
        """Remember that ``state`` changed (written by the next :meth:`flush`)."""
        self._cache[state.key] = state
        self._dirty.add(state.key)
        self._deleted.discard(state.key)

    def forget(self, kind: str, name: str) -> None:
        """Drop an object's state (it was deleted); the key is removed by the next flush."""
        key = f"{kind.lower()}.{name}"
        self._cache.pop(key, None)
        self._dirty.discard(key)
        self._deleted.add(key)

    def with_pending(self) -> list[ObjectState]:
        """Cached states holding derived Events not yet published."""
        return [s for s in self._cache.values() if s.pending]

    async def flush(self) -> int:
        """Write every dirty state; returns how many keys were written or removed.

        A key stays dirty until its write succeeded.

        Raises:
            StateError: a write failed (the rest stays dirty for the next flush).
        """
        written = 0
        for key in sorted(self._dirty):
            state = self._cache[key]
            try:
                await self.kv.put(key, orjson.dumps(state.to_json()))
            except Exception as exc:
                raise StateError(f"writing state {key!r}: {exc}") from exc
            self._dirty.discard(key)
            written += 1
        for key in sorted(self._deleted):
            try:
                await self.kv.delete(key)
            except KeyNotFoundError:
                pass
            except Exception as exc:
                raise StateError(f"removing state {key!r}: {exc}") from exc
            self._deleted.discard(key)
            written += 1
        return written

    async def load_pending(self) -> int:
        """Load every stored state that holds unpublished Events (after a restart).

        Returns:
            How many such states were found.

        Raises:
            StateError: the bucket could not be read.
        """
        try:
            keys = await self.kv.keys()
        except NoKeysError:
            return 0
        except Exception as exc:
            raise StateError(f"listing states: {exc}") from exc
        found = 0
        for key in keys:
            if key in self._cache:
                found += bool(self._cache[key].pending)
                continue
            state = await self._load(key)
            if state is not None and state.pending:
                self._cache[key] = state
                found += 1
        return found
