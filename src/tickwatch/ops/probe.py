"""Read-only looks at a Kafka cluster and a Spark checkpoint, for the health checks.

Nothing here joins a consumer group or commits an offset: the last message of a partition is
read by a throwaway consumer assigned to `high - 1`, and a group's position is read with
`committed()`, which does not join the group either.

Spark Structured Streaming keeps its Kafka position in the checkpoint, not in a consumer
group: `CHECKPOINT/offsets/N` (N = the newest batch) holds a version line, a metadata line and
then one JSON line per source, `{"topic": {"partition": next_offset}}`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

# confluent-kafka (the `kafka` extra) is imported by the functions that talk to a broker, so the
# checks load, and run in embedded mode, on the core install.
if TYPE_CHECKING:
    from confluent_kafka import Consumer

TIMEOUT = 5.0


def _config(bootstrap: str) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": int(TIMEOUT * 1000),
        "socket.connection.setup.timeout.ms": int(TIMEOUT * 1000),
        "logger": _quiet,
    }


class _Quiet:
    """librdkafka logs every refused connection; the checks report that once, in words."""

    def log(self, *_args: Any, **_kwargs: Any) -> None:
        return None


_quiet = _Quiet()


@dataclass(frozen=True)
class ClusterInfo:
    brokers: int
    topics: dict[str, int]  # topic -> partitions (internal topics left out)


def cluster(bootstrap: str, timeout: float = TIMEOUT) -> ClusterInfo:
    """Brokers and topics; raises KafkaException when no broker answers within `timeout`."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(_config(bootstrap))
    metadata = admin.list_topics(timeout=timeout)
    # A topic being created may still report LEADER_NOT_AVAILABLE: it exists all the same.
    topics = {
        name: len(topic.partitions)
        for name, topic in metadata.topics.items()
        if not name.startswith("__")
        and (topic.error is None or topic.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART)
    }
    return ClusterInfo(len(metadata.brokers), topics)


def _consumer(bootstrap: str, group: str | None = None) -> Consumer:
    from confluent_kafka import Consumer

    return Consumer(
        {
            **_config(bootstrap),
            "group.id": group or f"tickwatch-probe-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, tuple[int, int]]:
    """partition -> (low, high) watermarks."""
    from confluent_kafka import TopicPartition

    consumer = _consumer(bootstrap)
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)
            for p in range(partitions)
        }
    finally:
        consumer.close()


def last_message_time(bootstrap: str, topic: str, partitions: int) -> datetime | None:
    """The newest message timestamp (producer create time) in `topic`, None when empty."""
    from confluent_kafka import KafkaException, TopicPartition

    consumer = _consumer(bootstrap)
    try:
        targets = []
        for p in range(partitions):
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=TIMEOUT)
            if high > low:
                targets.append(TopicPartition(topic, p, high - 1))
        if not targets:
            return None
        consumer.assign(targets)
        newest: int | None = None
        pending = {t.partition for t in targets}
        for message in consumer.consume(num_messages=len(targets) * 4, timeout=TIMEOUT):
            if message.error() is not None:
                continue
            _kind, stamp = message.timestamp()
            if stamp > 0:
                newest = stamp if newest is None else max(newest, stamp)
            pending.discard(message.partition() or 0)
        if newest is None:
            raise KafkaException(f"could not read the last message of {topic} in {TIMEOUT}s")
        return datetime.fromtimestamp(newest / 1000, UTC)
    finally:
        consumer.close()


def committed_offsets(
    bootstrap: str, group: str, topic: str, partitions: int
) -> dict[int, int | None]:
    """partition -> the group's committed next offset (None when it never committed)."""
    from confluent_kafka import OFFSET_INVALID, TopicPartition

    consumer = _consumer(bootstrap, group)
    try:
        committed = consumer.committed(
            [TopicPartition(topic, p) for p in range(partitions)], timeout=TIMEOUT
        )
    finally:
        consumer.close()
    return {
        tp.partition: None if tp.offset == OFFSET_INVALID or tp.offset < 0 else tp.offset
        for tp in committed
    }


def checkpoint_offsets(checkpoint: Path) -> dict[str, dict[int, int]]:
    """topic -> partition -> next offset, from the newest batch of a Spark checkpoint."""
    folder = checkpoint / "offsets"
    batches = sorted(
        (int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
    )
    if not batches:
        return {}
    lines = (folder / str(batches[-1])).read_text().splitlines()
    positions: dict[str, dict[int, int]] = {}
    for line in lines[2:]:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(value, dict):
            for topic, parts in value.items():
                if isinstance(parts, dict):
                    positions[topic] = {int(p): int(o) for p, o in parts.items()}
    return positions


def newest_mtime(paths: Iterable[Path]) -> datetime | None:
    """The latest modification time among `paths` and everything under them."""
    newest: float | None = None
    for path in paths:
        for item in [path, *path.rglob("*")] if path.is_dir() else [path]:
            try:
                stamp = item.stat().st_mtime
            except FileNotFoundError:  # a file Spark removed while we walked
                continue
            newest = stamp if newest is None else max(newest, stamp)
    return None if newest is None else datetime.fromtimestamp(newest, UTC)
