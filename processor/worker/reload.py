"""Policy hot reload: poll the policy files, follow the NATS KV bucket, swap the set atomically.

Both sources feed one :class:`PolicyReloader`. A change rebuilds the whole set
(:func:`~processor.policy.compile.compile_set`); on success the pipeline's translator is replaced
between two deliveries (the event loop is single-threaded, so a batch never sees two sets); on
failure the errors are logged with file, field path and position, counted in
``activity_processor_policy_reloads_total{result="rejected"}``, and the running set stays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import Any

from processor.errors import PolicyErrors
from processor.metrics import Metrics
from processor.policy.compile import Compiled, compile_set
from processor.service import cancel_tasks
from processor.translate import Translator
from processor.worker.policies import files_fingerprint

log = logging.getLogger(__name__)


class PolicyReloader:
    """Keeps the active policy set in step with the files and the KV bucket.

    Args:
        paths: policy files and directories.
        stages: audit stages to translate (empty = all).
        max_record_bytes: the translator's record size limit.
        metrics: reload counters and the active-policy gauge.
        on_change: receives the new translator after every accepted reload.
    """

    def __init__(
        self,
        paths: Sequence[str],
        stages: Sequence[str],
        max_record_bytes: int,
        metrics: Metrics,
        on_change: Callable[[Translator], None] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.stages = tuple(stages)
        self.max_record_bytes = max_record_bytes
        self.metrics = metrics
        self.on_change = on_change
        self.kv_entries: dict[str, bytes] = {}
        self.fingerprint = files_fingerprint(self.paths)
        self.current: Compiled | None = None
        self.last_error: str = ""
        self._tasks: list[asyncio.Task[None]] = []

    def load(self) -> Compiled:
        """Compile the initial set (raises :class:`PolicyErrors` if it is invalid)."""
        self.current = self._compile(self.kv_entries)
        self._accepted("initial")
        return self.current

    def _compile(self, kv_entries: dict[str, bytes]) -> Compiled:
        return compile_set(
            self.paths,
            kv_entries,
            stages=self.stages or None,
            max_record_bytes=self.max_record_bytes,
        )

    def _accepted(self, source: str) -> None:
        assert self.current is not None
        self.metrics.active_policies.set(len(self.current.policies))
        self.metrics.policy_reloads.labels(source, "accepted").inc()
        self.last_error = ""
        log.info("policies (%s): %d active", source, len(self.current.policies))

    def reload(self, source: str, kv_entries: dict[str, bytes] | None = None) -> bool:
        """Rebuild from the files and ``kv_entries`` (default: current ones); True if accepted."""
        entries = self.kv_entries if kv_entries is None else kv_entries
        try:
            compiled = self._compile(entries)
        except PolicyErrors as exc:
            self.metrics.policy_reloads.labels(source, "rejected").inc()
            self.last_error = "; ".join(str(e) for e in exc.errors)
            log.error(
                "policy update from %s rejected, keeping the running set: %s",
                source,
                self.last_error,
            )
            return False
        self.kv_entries = dict(entries)
        self.current = compiled
        self._accepted(source)
        if self.on_change is not None:
            self.on_change(compiled.translator)
        return True

    # -- sources --------------------------------------------------------------------------------
    def start(self, interval: float, kv: Any | None = None) -> None:
        """Start polling the files every ``interval`` seconds and, if given, watching ``kv``."""
        if self.paths:
            self._tasks.append(asyncio.ensure_future(self._poll_files(interval)))
        if kv is not None:
            self._tasks.append(asyncio.ensure_future(self._watch_kv(kv, interval)))

    async def _poll_files(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            fingerprint = await asyncio.to_thread(files_fingerprint, self.paths)
            if fingerprint != self.fingerprint:
                self.fingerprint = fingerprint
                self.reload("files")

    async def _watch_kv(self, kv: Any, interval: float) -> None:
        """Follow every key of the bucket; the initial values are applied as one update."""
        while True:
            try:
                await self._follow(kv, interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("policy bucket watch failed, restarting: %s", exc)
                await asyncio.sleep(1.0)

    async def _follow(self, kv: Any, interval: float) -> None:
        """Watch until the watch fails or the bucket's stream is gone or created anew.

        nats-py's ordered consumer neither fails nor notices when its stream is deleted: it
        resumes a re-created bucket after the old one's last sequence, so the new bucket's first
        updates would be skipped without a word. Every ``interval`` the stream's creation time is
        compared with the one watched; a difference (or a missing bucket) restarts the watch,
        whose initial values are then the whole bucket, as a worker starting now would read it.
        """
        created = (await kv.status()).stream_info.created
        watcher = await kv.watchall()
        updates = asyncio.ensure_future(self._apply(watcher))
        try:
            while not updates.done():
                await asyncio.wait({updates}, timeout=interval)
                if not updates.done() and (await kv.status()).stream_info.created != created:
                    raise RuntimeError("the policy bucket was deleted and created again")
            updates.result()
        finally:
            updates.cancel()
            await asyncio.gather(updates, return_exceptions=True)
            with contextlib.suppress(Exception):
                await watcher.stop()

    async def _apply(self, watcher: Any) -> None:
        """Apply the watch's initial values as one update, then every change as it comes."""
        entries: dict[str, bytes] = {}  # the initial values are the whole bucket
        initial = True
        async for entry in watcher:
            if entry is None:  # end of the initial values
                initial = False
                if entries != self.kv_entries:
                    self.reload("kv", entries)
                entries = dict(self.kv_entries)
                continue
            if entry.operation in ("DEL", "PURGE") or entry.value is None:
                entries.pop(entry.key, None)
            else:
                entries[entry.key] = entry.value
            if not initial:
                self.reload("kv", entries)
                entries = dict(self.kv_entries)

    async def stop(self) -> None:
        """Stop watching."""
        await cancel_tasks(self._tasks)
        self._tasks.clear()
