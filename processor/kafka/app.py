"""The Faust application of the Kafka transport's low-rate control streams (docs/kafka.md).

Faust runs what it is good at: consumer-group membership and rebalancing, tables with a
changelog, timers. It never sits on the per-record path of the workers: its per-event stream
machinery measured 3-4k records/s against 44-51k for a raw aiokafka ``getmany`` loop (issue 27).

Settings chosen for tansu, the test and demo broker, and kept for Kafka:

* ``broker_session_timeout`` and ``broker_rebalance_timeout`` of 10 s: a group join takes about
  5 s instead of about 30 s with Faust's defaults;
* ``processing_guarantee="at_least_once"``: tansu rejects ``InitProducerId``, so Faust's
  ``exactly_once`` (transactional producers) cannot start there; offsets are committed after
  the producer is flushed, so a table change is in its changelog before the input that caused
  it is committed;
* the web server is off unless a port is given (the services run their own health server);
* tables live in memory (``memory://``) and are rebuilt from their changelog on start and on
  each assignment, without standby replicas (a standby partition turned active never finished
  its recovery on tansu), and up to a fence record written when the recovery starts, not up to
  the end offset the brokers report (tansu reports a wrong one: :mod:`processor.kafka.recovery`).
"""

from __future__ import annotations

import tempfile
from typing import Any

from processor.kafka.settings import KafkaSettings

__all__ = ["make_app"]


def make_app(
    app_id: str,
    settings: KafkaSettings,
    *,
    web_port: int | None = None,
    datadir: str | None = None,
    **options: Any,
) -> Any:
    """A ``faust.App`` for ``settings.brokers`` with the transport's timeouts.

    Args:
        app_id: the application id; it is also the consumer group of the app's agents and the
            prefix of its tables' changelog topics.
        settings: brokers, partitions and timeouts.
        web_port: serve Faust's web views on 127.0.0.1:``web_port`` (None: no web server).
        datadir: Faust's data directory (default: a new temporary directory).
        options: further Faust settings (they override the ones here).
    """
    import faust

    from processor.kafka.recovery import FencedTableManager

    config: dict[str, Any] = {
        "broker": [f"kafka://{b}" for b in settings.bootstrap],
        "broker_session_timeout": settings.session_timeout,
        "broker_rebalance_timeout": settings.rebalance_timeout,
        "broker_heartbeat_interval": settings.heartbeat_interval,
        "processing_guarantee": "at_least_once",
        "producer_acks": -1,
        "store": "memory://",
        # no standby copies: on tansu a standby partition turned active never finished its
        # recovery (measured; the active partitions recover from the changelog instead)
        "table_standby_replicas": 0,
        "TableManager": FencedTableManager,
        "topic_partitions": settings.partitions,
        "topic_replication_factor": 1,
        "consumer_auto_offset_reset": "earliest",
        "autodiscover": False,
        "datadir": datadir or tempfile.mkdtemp(prefix=f"faust-{app_id}-"),
        "web_enabled": web_port is not None,
        "web_host": "127.0.0.1",
        "web_port": web_port or 6066,
    }
    config.update(options)
    return faust.App(app_id, **config)
