"""The inventory sidecar reconciler: condition transitions in audit records -> Events.

Modules: :mod:`.conditions` (observe conditions in audit records), :mod:`.transitions` (the
recorder's transition rules, per-object state), :mod:`.events` (the Events, upstream shape),
:mod:`.state` (the NATS KV bucket), :mod:`.service` (the consumers and the publisher loop).
"""
