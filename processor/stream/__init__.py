"""NATS JetStream layer: embedded server, stream topology, fast pull consumer, windowed publisher.

* :mod:`processor.stream.server` - the bundled ``nats-server`` as a child process.
* :mod:`processor.stream.topology` - the upstream streams and durable consumers.
* :mod:`processor.stream.partitions` - owned partitions and their subjects (docs/design.md#d13).
* :mod:`processor.stream.consumer` - :class:`PullConsumer` and batched acks.
* :mod:`processor.stream.frames` - the frame splitter that hands the consumers' inbox messages
  to them before nats-py's ``Msg`` path.
* :mod:`processor.stream.publisher` - :class:`JsPublisher` with a PubAck window.

Submodules are imported on use (``from processor.stream.consumer import PullConsumer``), so that
importing the package does not import nats-py.
"""
