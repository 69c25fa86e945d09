"""The seeded benchmark corpus: realistic audit events and Kubernetes Events.

:func:`generate` yields plain JSON-ready dicts; :func:`write_jsonl` streams them as JSON lines,
optionally batching audit events into ``audit.k8s.io/v1`` ``EventList`` lines the way the
kube-apiserver audit webhook sends them.

Records look like the workload in ``docs/design.md#perf-workload``: reads (get/list/watch) and a
stream of lease renewals, with create/update/patch/delete, status and scale subresource writes,
failed requests, dry runs and ``Metadata``-level records mixed in. Two mixes
(:data:`~processor.bench.corpus.vocab.MIXES`) set the shares: ``standard``, a write-heavy stress
mix with many people writing (about 15% of its records become activities with the bundled
policies), and ``production``, mostly reads, renewals and controllers' writes (about one record
in three hundred; production's own share is under one in ten thousand). ``RequestResponse``
records carry ``requestObject``/``responseObject`` bodies with the metadata real clusters send
(``managedFields`` with ``fieldsV1`` trees, ``kubectl.kubernetes.io/last-applied-configuration``),
sized so that a serialised audit event is mostly 2-8 KB. About ``event_ratio`` of the records
(the mix's own unless given) are Kubernetes Events (``events.k8s.io/v1`` and core ``v1``),
including inventory Ready/NotReady events.

Everything is derived from one ``random.Random(seed)``: the same ``(count, seed, event_ratio,
mix)`` gives byte-identical output in any process (no wall clock, no ``uuid4``, no hash-ordered
sets).

Modules: :mod:`.vocab` (constant vocabulary and kinds), :mod:`.base` (seeded state and identity
pools), :mod:`.specs` and :mod:`.objects` (resource bodies), :mod:`.bodies` and :mod:`.audit`
(audit events), :mod:`.events` (Kubernetes Events), :mod:`.generator` and :mod:`.writer`.
"""

from processor.bench.corpus.generator import generate
from processor.bench.corpus.writer import CorpusStats, write_jsonl

__all__ = ["CorpusStats", "generate", "write_jsonl"]
