"""Exception types that carry the sink's decision about a failure."""

from __future__ import annotations


class InvalidMessage(Exception):
    """The message can never be applied as it is: it goes to the dead-letter topic.

    The pipeline continues past it once the dead letter is durably written.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeadLetterWriteFailed(Exception):
    """Kafka did not take a dead letter: the sink stops rather than skip the message."""
