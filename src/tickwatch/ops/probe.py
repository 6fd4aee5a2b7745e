"""Read-only looks at a Kafka cluster and a Spark checkpoint, for the health checks.

Nothing here joins a consumer group or commits an offset: the last message of a partition is
read by a throwaway consumer assigned to `high - 1`, and a group's position is read with
`committed()`, which does not join the group either.

Spark Structured Streaming keeps its Kafka position in the checkpoint, not in a consumer
group: `CHECKPOINT/offsets/N` (N = the newest batch) holds a version line, a metadata line and
then one JSON line per source, `{"topic": {"partition": next_offset}}`. Its liveness is the
heartbeat the job writes next to it once per trigger interval (tickwatch.spark.progress).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from tickwatch.ops.checks import Outcome, fail, ok, warn
from tickwatch.spark.progress import Heartbeat, read_heartbeat

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


def _batches(folder: Path) -> list[int]:
    return (
        sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
    )


def checkpoint_offsets(checkpoint: Path) -> dict[str, dict[int, int]]:
    """topic -> partition -> next offset, from the newest committed batch of a Spark checkpoint.

    Spark writes `offsets/N` when it plans batch N and `commits/N` when N is done; a job that
    dies in between re-runs N, so the position it has processed up to is the newest N with a
    commit. A checkpoint without a commit log (written by hand, or an older layout) gives its
    newest planned batch.
    """
    folder = checkpoint / "offsets"
    batches = _batches(folder)
    if (checkpoint / "commits").is_dir():
        committed = set(_batches(checkpoint / "commits"))
        batches = [b for b in batches if b in committed]
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


def _newest_heartbeat(checkpoints: Iterable[Path]) -> tuple[Path, Heartbeat] | None:
    found = [(c, h) for c in checkpoints if (h := read_heartbeat(c)) is not None]
    return max(found, key=lambda pair: pair[1].at, default=None)


def stream_job_liveness(
    process: bool | None, checkpoints: tuple[Path, ...], now: datetime
) -> Outcome:
    """The distributed stream job's verdict from its recorded process (None: no record) and
    the newest heartbeat among `checkpoints`.

    A heartbeat older than its limit (two trigger intervals) fails, whatever the process
    record says: a job whose driver is alive but whose query stopped writes none either. No
    heartbeat at all only warns: the job has never run with this checkpoint (or is starting).
    """
    where = ", ".join(str(c) for c in checkpoints) or "no checkpoint given"
    figures: dict[str, Any] = {
        "process_alive": process,
        "checkpoints": [str(c) for c in checkpoints],
    }
    newest = _newest_heartbeat(checkpoints)
    if newest is not None:
        checkpoint, beat = newest
        age = beat.age(now).total_seconds()
        figures.update(
            heartbeat_age_s=round(age, 1),
            heartbeat_limit_s=round(beat.limit.total_seconds(), 1),
            trigger_seconds=beat.trigger_seconds,
            batch_id=beat.batch_id,
            checkpoint=str(checkpoint),
        )
    if process is False:
        return fail("the stream job's process is gone; restart it (tickwatch spark)", **figures)
    if newest is None:
        state = "its process is running but" if process else "no process record and"
        return warn(
            f"cannot see the stream job: {state} no heartbeat in {where}; start it "
            "(tickwatch spark) or pass its --checkpoint",
            **figures,
        )
    if beat.age(now) > beat.limit:
        return fail(
            f"the stream job's heartbeat is {age:.0f} s old (limit {beat.limit.total_seconds():g}"
            f" s: two {beat.trigger_seconds:g} s triggers): the job is dead or stuck; restart it "
            "(tickwatch spark) and read its log",
            **figures,
        )
    batch = "" if beat.batch_id is None else f", last batch {beat.batch_id}"
    return ok(f"stream job heartbeat {age:.0f} s ago{batch}", **figures)


def nothing_measured(
    checkpoints: tuple[Path, ...], group: str | None, topics: list[str]
) -> Outcome:
    """The consumer-lag verdict when no reader position was found: a warning that says where
    it looked, never an "ok" over an empty measurement. A warning like stream-job's when it
    sees no heartbeat: the job has not run with this checkpoint; a job that ran and died
    fails there, on its stale heartbeat."""
    looked = [
        f"Spark checkpoint {c} (no offsets for {', '.join(topics) or 'the raw topics'})"
        for c in checkpoints
    ]
    if group:
        looked.append(f"group {group}")
    where = "; ".join(looked) or "no checkpoint and no consumer group"
    return warn(
        f"no consumer position to measure the lag from: {where}; start the stream job "
        "(tickwatch spark), or pass --checkpoint / --group for the reader to measure",
        checkpoints=[str(c) for c in checkpoints],
        group=group,
        topics=topics,
    )
