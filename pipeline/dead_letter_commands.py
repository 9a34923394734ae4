"""``cdcsync dlq list | show | replay``: inspect dead letters, and re-apply them after a fix."""

from __future__ import annotations

import base64
import json

import click

from cdcsync.debezium.record_values import RecordDecoder, frame_schema_id, is_avro_framed
from cdcsync.pipeline.cli_options import command_targets
from cdcsync.pipeline.connectors_commands import format_table
from cdcsync.pipeline.errors import CdcsyncError
from cdcsync.pipeline.targets import Targets
from cdcsync.sink.dead_letters import (
    ERROR_CLASS_HEADER,
    ERROR_MESSAGE_HEADER,
    StoredDeadLetter,
    read_dead_letters,
    replay_dead_letters,
)
from cdcsync.sink.kafka_clients import consumer_config, producer_config


def _letters() -> tuple[Targets, list[StoredDeadLetter], str]:
    """The dead letters, read with the sink's settings (the same variables as ``cdcsync sink run``)."""
    targets = command_targets(("KAFKA_BOOTSTRAP_SERVERS", "CDCSYNC_SINK_DB_URL"))
    settings = targets.sink_settings()
    reader = {**consumer_config(settings), "group.id": f"{settings.group_id}-dlq-reader"}
    return targets, read_dead_letters(reader, settings.dead_letter_topic), settings.dead_letter_topic


def _select(letters: list[StoredDeadLetter], offsets: tuple[str, ...]) -> list[StoredDeadLetter]:
    """Dead letters by ``PARTITION:OFFSET`` or ``OFFSET`` (partition 0)."""
    wanted = set()
    for item in offsets:
        partition, _, offset = item.rpartition(":")
        try:
            wanted.add((int(partition or 0), int(offset)))
        except ValueError:
            raise click.BadParameter(f"{item!r} is not OFFSET or PARTITION:OFFSET") from None
    chosen = [x for x in letters if (x.partition, x.offset) in wanted]
    missing = wanted - {(x.partition, x.offset) for x in chosen}
    if missing:
        raise CdcsyncError(f"no dead letter at {', '.join(f'{p}:{o}' for p, o in sorted(missing))}")
    return chosen


@click.group()
def dlq() -> None:
    """Dead letters: messages the sink could not apply (topic CDCSYNC_DLQ_TOPIC)."""


@dlq.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per dead letter.")
def list_letters(as_json: bool) -> None:
    """Every dead letter with where it came from and why it was set aside."""
    _, letters, topic = _letters()
    if as_json:
        for x in letters:
            click.echo(json.dumps(_summary(x), sort_keys=True))
        return
    rows = [
        (f"{x.partition}:{x.offset}", f"{x.original.topic}[{x.original.partition}]@{x.original.offset}",
         x.header(ERROR_CLASS_HEADER), x.header(ERROR_MESSAGE_HEADER)[:80])
        for x in letters
    ]  # fmt: skip
    click.echo(f"{len(letters)} dead letters in {topic}")
    if rows:
        click.echo(format_table(("dead letter", "original", "error", "reason"), rows))


def _summary(x: StoredDeadLetter) -> dict[str, object]:
    return {
        "dead_letter": f"{x.partition}:{x.offset}",
        "original_topic": x.original.topic,
        "original_partition": x.original.partition,
        "original_offset": x.original.offset,
        "error_class": x.header(ERROR_CLASS_HEADER),
        "reason": x.header(ERROR_MESSAGE_HEADER),
    }


@dlq.command("show")
@click.argument("offsets", nargs=-1, required=True)
def show(offsets: tuple[str, ...]) -> None:
    """Headers, key and value of dead letters, by OFFSET or PARTITION:OFFSET."""
    targets, letters, _ = _letters()
    decoder = RecordDecoder(targets.schema_registry_url)
    for x in _select(letters, offsets):
        click.echo(f"dead letter {x.partition}:{x.offset}")
        for name, value in x.headers:
            click.echo(f"  header {name}: {(value or b'').decode('utf-8', errors='replace')}")
        click.echo(f"  key:   {_shown(decoder, x.original.topic, x.key)}")
        click.echo(f"  value: {_shown(decoder, x.original.topic, x.value)}")


def _shown(decoder: RecordDecoder, topic: str, raw: bytes | None) -> str:
    """A key or value as text: JSON as it is; Avro (Confluent-framed) decoded through the registry when it
    can be, else its schema id and bytes in base64."""
    if raw is None or not is_avro_framed(raw):
        return (raw or b"").decode("utf-8", errors="replace")
    try:
        return f"(Avro, schema id {frame_schema_id(raw)}) " + json.dumps(decoder.document(topic, raw), default=str)
    except CdcsyncError as exc:
        return f"(Avro, schema id {frame_schema_id(raw)}; not decoded: {exc}) {base64.b64encode(raw).decode()}"


@dlq.command("replay")
@click.argument("offsets", nargs=-1)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead letter.")
def replay(offsets: tuple[str, ...], replay_all: bool) -> None:
    """Send dead letters back to their original topics, once the sink can apply them.

    Safe to repeat: the sink never lets an older change replace a newer one, so a
    replayed change that has since been overtaken has no effect. A letter the sink
    still cannot apply becomes a new dead letter.
    """
    if replay_all == bool(offsets):
        raise click.UsageError("give dead-letter offsets or --all (not both)")
    targets, letters, _ = _letters()
    chosen = letters if replay_all else _select(letters, offsets)
    for letter, new_offset in replay_dead_letters(producer_config(targets.sink_settings()), chosen):
        click.echo(f"replayed {letter.partition}:{letter.offset} to {letter.original.topic} at offset {new_offset}")
