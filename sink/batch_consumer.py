"""How the sink takes a batch from Kafka: at once when data is there, a little longer only under load.

``consume_batch`` blocks only while nothing is there (up to ``idle_wait_s``), and returns
as soon as a first message is: a change committed alone is applied without waiting for
company. It then takes what the client has already fetched, and only when that shows a
flow (more than the first message was waiting) does it top the batch up, a short wait
(``linger_ms``) at a time, while top-ups keep bringing messages. A batch closes at
``batch_max_messages`` or ``batch_max_wait_ms`` after its first message, whichever comes
first, so that under any load a message waits a bounded time before its batch is applied.
"""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Message

from cdcsync.sink.settings import SinkSettings


def consume_batch(consumer: Consumer, settings: SinkSettings, idle_wait_s: float) -> list[Message]:
    """The next batch, in consumption order; [] if nothing came within ``idle_wait_s``."""
    first = consumer.poll(idle_wait_s)
    if first is None:
        return []
    deadline = time.monotonic() + settings.batch_max_wait_ms / 1000
    limit = settings.batch_max_messages
    messages = [first]
    if limit > 1:
        messages += consumer.consume(limit - 1, 0)  # what is fetched already: no wait
    under_load = len(messages) > 1
    while under_load and len(messages) < limit:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        more = consumer.consume(limit - len(messages), min(left, settings.linger_ms / 1000))
        if not more:
            break  # the flow stopped: nothing to wait for
        messages += more
    return messages
