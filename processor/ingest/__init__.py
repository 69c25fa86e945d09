"""``activity ingest``: the HTTPS edge that feeds the input partitions (``docs/ingest.md``).

kube-apiserver's audit webhook posts ``audit.k8s.io/v1`` EventLists to ``/audit``; Kubernetes
Events arrive on ``/events``. Each record is routed with the workers' own partition function
(:mod:`processor.subjects`), gathered per partition into messages with deterministic
``Nats-Msg-Id`` s, published to JetStream (or Kafka, ``--kafka-brokers``), and the request is
answered only once every message that holds its records is acknowledged.

Modules: :mod:`.settings` (flags and ``ACTIVITY_*`` variables), :mod:`.auth` (TLS, tokens, client
certificates), :mod:`.body` (parsing and validation), :mod:`.split` (the one-pass list splitter's
specification; native ``_native/ingestsplit.pyx``), :mod:`.batching` (messages and their ids,
the optional linger), :mod:`.publish` (JetStream, status codes), :mod:`.kafka` (the Kafka
publisher), :mod:`.metrics`, :mod:`.server` (the aiohttp application), :mod:`.webhook`
(kube-apiserver's webhook config file).

This package's ``__init__`` imports nothing: the CLI builds its parser from :mod:`.settings`
without loading aiohttp or nats-py.
"""
