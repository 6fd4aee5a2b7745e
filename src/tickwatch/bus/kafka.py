"""The Kafka bus (confluent-kafka): the distributed twin of the in-process bus.

Topics (names from `tickwatch.model`) are created idempotently when the bus starts: existing
ones are left as they are. Every message is keyed by symbol, and Kafka's default partitioner
hashes the key, so one symbol's ticks stay in one partition, in the order they were published.
Values are JSON bytes: a mapping as is, a `Tick` as its replay record, a `Window` or `Anomaly`
as its table row (datetimes in RFC 3339), and raw `bytes` untouched, so a malformed input line
reaches the processor, which keeps it as a dead letter.

Delivery: the producer uses acks=all and idempotence (no duplicates from its retries, order kept
per partition) and never gives up on a message (message.timeout.ms = 0). While the broker is
unreachable, messages wait in librdkafka's queue and are retried; a full queue makes `publish`
wait (back-pressure, like the in-process bus) instead of dropping. Both states are logged once
when they start and once when they end.
A broker that is down when the bus starts is not fatal either: the bus logs it, buffers, and
creates the topics as soon as the broker answers.

Consumption is at least once: the offsets of a batch are stored only when the next `poll` asks
for more (or at `close`), i.e. after the caller has handled it. A restart may replay the last
batch; the stores' upserts make the replay harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from confluent_kafka import Consumer as RdConsumer
from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from tickwatch.model import (
    CLEAN_MARKET_DATA,
    MARKET_ALERTS,
    MARKET_ANOMALIES,
    RAW_CRYPTO_TICKS,
    RAW_STOCK_TICKS,
    Tick,
)
from tickwatch.records import tick_to_record

log = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
START_TIMEOUT = 10.0  # seconds the constructor waits for the broker before going on
TOPIC_RETRY_SECONDS = 2.0


class _ClientLog:
    """librdkafka's own log lines, demoted to DEBUG and counted.

    During a broker outage librdkafka logs every refused connection at ERROR (about four a
    second, hundreds a minute) although nothing is lost: the producer buffers and retries. The
    outage is reported by `KafkaBus._on_error` instead, once when it starts and once, with this
    count, when it ends. Run with LOG_LEVEL=DEBUG to see the client's lines.
    """

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self.serious = 0  # lines librdkafka logged at WARNING or above

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        if level >= logging.WARNING:
            self.serious += 1
        self._logger.log(logging.DEBUG, msg, *args, **kwargs)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    retention_ms: int


# Raw ticks are replayable input (a week); results live longer for dashboards and audits.
TOPICS = (
    TopicSpec(RAW_STOCK_TICKS, 7 * DAY_MS),
    TopicSpec(RAW_CRYPTO_TICKS, 7 * DAY_MS),
    TopicSpec(CLEAN_MARKET_DATA, 30 * DAY_MS),
    TopicSpec(MARKET_ANOMALIES, 90 * DAY_MS),
    TopicSpec(MARKET_ALERTS, 90 * DAY_MS),
)


def encode(value: Any) -> bytes:
    """The JSON bytes of a bus value (see the module docstring for each kind)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, Tick):
        return orjson.dumps(tick_to_record(value))
    if hasattr(value, "as_row"):
        return orjson.dumps(value.as_row())
    if isinstance(value, Mapping):
        return orjson.dumps(dict(value))
    raise TypeError(f"cannot publish {type(value).__name__} to Kafka: expected JSON-able data")


def ensure_topics(
    admin: AdminClient,
    specs: tuple[TopicSpec, ...],
    prefix: str = "",
    partitions: int = 3,
    replication: int = 3,
    timeout: float = 30.0,
) -> list[str]:
    """Create the missing topics of `specs`; returns the names it created.

    The replication factor is capped at the number of brokers, so one broker (tests, a laptop,
    the compose stack) gets 1 and a real cluster gets `replication`.
    """
    metadata = admin.list_topics(timeout=timeout)
    factor = max(1, min(replication, len(metadata.brokers)))
    missing = [
        NewTopic(
            prefix + spec.name,
            num_partitions=partitions,
            replication_factor=factor,
            config={"retention.ms": str(spec.retention_ms), "cleanup.policy": "delete"},
        )
        for spec in specs
        if prefix + spec.name not in metadata.topics
    ]
    if not missing:
        return []
    created = []
    for name, future in admin.create_topics(missing, request_timeout=timeout).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    if created:
        log.info(
            "created Kafka topics %s (%d partitions, replication %d)", created, partitions, factor
        )
    return created


class KafkaConsumer:
    """A consumer in group `group`, reading from the earliest retained offset the first time."""

    def __init__(self, config: dict[str, Any], topics: list[str], prefix: str) -> None:
        self._prefix = prefix
        self._consumer = RdConsumer(
            {
                **config,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
            }
        )
        self._consumer.subscribe([prefix + topic for topic in topics])
        self._handed_out: list[Message] = []

    def _store_handed_out(self) -> None:
        if not self._handed_out:
            return
        latest: dict[tuple[str, int], int] = {}
        for message in self._handed_out:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            if topic is not None and partition is not None and offset is not None:
                latest[(topic, partition)] = max(latest.get((topic, partition), -1), offset)
        self._consumer.store_offsets(
            offsets=[TopicPartition(t, p, o + 1) for (t, p), o in latest.items()]
        )
        self._handed_out = []

    def poll(self, max_records: int, timeout: float) -> list[tuple[str, Any]]:
        """Up to `max_records` (topic, JSON bytes); marks the previous batch as handled."""
        self._store_handed_out()
        items: list[tuple[str, Any]] = []
        for message in self._consumer.consume(num_messages=max_records, timeout=timeout):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("Kafka consumer: %s", error.str())
                continue
            self._handed_out.append(message)
            topic = (message.topic() or "").removeprefix(self._prefix)
            items.append((topic, message.value()))
        return items

    def close(self) -> None:
        """Store the last batch's offsets, commit them and leave the group."""
        try:
            self._store_handed_out()
            self._consumer.commit(asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                log.warning("Kafka consumer: final commit failed: %s", exc)
        finally:
            self._consumer.close()


class KafkaBus:
    """Publishes to and subscribes from a Kafka cluster; see the module docstring.

    `topic_prefix` namespaces every topic (several test runs or tenants on one cluster); the
    consumer hands back topic names without it.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        group: str = "tickwatch",
        topic_prefix: str = "",
        partitions: int = 3,
        replication: int = 3,
        client_config: Mapping[str, Any] | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.group = group
        self.prefix = topic_prefix
        # librdkafka's own log lines go to this module's logger at DEBUG (see _ClientLog)
        self._client_log = _ClientLog(log)
        self._base = {
            "bootstrap.servers": bootstrap_servers,
            "logger": self._client_log,
            **(client_config or {}),
        }
        self._down_since: float | None = None
        self._down_errors = 0  # errors reported while the broker is unreachable
        self._lock = threading.Lock()
        self.published = 0  # messages handed to the client (its len() also counts requests)
        self.delivered = 0
        self.failed = 0
        self._topics = (partitions, replication)
        self.topics_ready = threading.Event()
        self._admin = AdminClient(self._base)
        self._create_topics(start_timeout)
        self._producer = Producer(
            {
                **self._base,
                "acks": "all",
                "enable.idempotence": True,
                "message.timeout.ms": 0,
                "linger.ms": 20,
                "compression.type": "lz4",
                "error_cb": self._on_error,
            }
        )
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve, name="kafka-producer", daemon=True)
        self._poller.start()

    def _create_topics(self, timeout: float) -> None:
        """Create the topics; a broker that does not answer is retried later, not fatal."""
        try:
            ensure_topics(self._admin, TOPICS, self.prefix, *self._topics, timeout=timeout)
        except KafkaException as exc:
            log.warning(
                "Kafka broker %s did not answer (%s): topics will be created when it does; "
                "messages are buffered until then",
                self.bootstrap_servers,
                exc.args[0].str() if exc.args else exc,
            )
            return
        self.topics_ready.set()

    def _serve(self) -> None:
        """Serve delivery reports and errors; create the topics once the broker answers."""
        next_try = time.monotonic() + TOPIC_RETRY_SECONDS
        while not self._closing.is_set():
            self._producer.poll(0.2)
            if not self.topics_ready.is_set() and time.monotonic() >= next_try:
                self._create_topics(TOPIC_RETRY_SECONDS)
                next_try = time.monotonic() + TOPIC_RETRY_SECONDS

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            log.error("Kafka producer fatal error: %s", error.str())
            return
        if error.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT):
            with self._lock:
                if self._down_since is None:
                    self._down_since = time.monotonic()
                    self._down_errors = 0
                    self._client_log.serious = 0
                    log.warning(
                        "Kafka broker %s unreachable (%s): buffering %d messages and retrying",
                        self.bootstrap_servers,
                        error.str(),
                        len(self._producer),
                    )
                else:
                    self._down_errors += 1
        elif self._down_since is not None:
            self._down_errors += 1  # a symptom of the outage already reported
        else:
            log.warning("Kafka producer: %s", error.str())

    def _on_delivery(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self.failed += 1
            log.error("Kafka delivery failed permanently: %s", error.str())
            return
        self.delivered += 1
        if self._down_since is not None:
            with self._lock:
                if self._down_since is not None:
                    log.warning(
                        "Kafka broker %s reachable again after %.1f s (%d client errors, %d "
                        "client log lines at WARNING+ meanwhile); %d messages still queued",
                        self.bootstrap_servers,
                        time.monotonic() - self._down_since,
                        self._down_errors,
                        self._client_log.serious,
                        len(self._producer),
                    )
                    self._down_since = None

    def publish(self, topic: str, key: str, value: Any) -> None:
        """Queue one message; waits (with a log) while the local buffer is full."""
        payload = encode(value)
        waited = False
        while True:
            try:
                self._producer.produce(
                    self.prefix + topic, payload, key.encode(), on_delivery=self._on_delivery
                )
                self.published += 1
                break
            except BufferError:
                if not waited:
                    log.warning(
                        "Kafka producer buffer full (%d messages waiting): publisher paused",
                        len(self._producer),
                    )
                    waited = True
                self._producer.poll(0.5)
        if waited:
            log.warning("Kafka producer buffer has room again: publisher resumed")

    def pending(self) -> int:
        """Messages queued or in flight, not yet acknowledged by the broker (the client's own
        len() also counts protocol requests, e.g. a metadata request to a broker that is down)."""
        return self.published - self.delivered - self.failed

    def flush(self, timeout: float = 30.0) -> int:
        """Wait up to `timeout` seconds for every queued message; returns how many remain."""
        return int(self._producer.flush(timeout))

    def subscribe(self, topics: list[str]) -> KafkaConsumer:
        return KafkaConsumer({**self._base, "group.id": self.group}, topics, self.prefix)

    def close(self, timeout: float = 30.0) -> None:
        """Flush what is queued; what the broker has not taken by `timeout` is reported."""
        self.flush(timeout)
        self._closing.set()
        self._poller.join()
        remaining = self.pending()
        if remaining:
            log.error(
                "Kafka bus closed with %d messages undelivered: broker %s unreachable for %.0f s",
                remaining,
                self.bootstrap_servers,
                timeout,
            )
