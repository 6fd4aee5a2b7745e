"""Stage 1 of the job: raw Kafka records to validated ticks or dead letters (mapInPandas).

Each record is judged by the project's one validator, `tickwatch.normalize.parse_tick` (after
`tickwatch.processor.decode` for the JSON), exactly as the embedded processor judges it, so the
two engines accept and reject the same records with the same reasons. "Now" for the clock-skew
rule and a dead letter's `received_at` is the broker's timestamp of the record, which makes a
replay after a restart give the same answer.

A valid tick keeps the symbol as the validator wrote it (trimmed); that symbol is the key the
next stage groups by. An invalid record is keyed by "" (it has no trustworthy symbol) and carries
its dead letter's fields.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pandas as pd  # type: ignore[import-untyped]

from tickwatch.decoding import decode
from tickwatch.engine.windows import from_micros, micros
from tickwatch.errors import InvalidTick
from tickwatch.model import Tick
from tickwatch.normalize import parse_tick, reject
from tickwatch.spark.schemas import KIND_INVALID, KIND_TICK, VALIDATED, frame

_TICK_FIELDS = ("price", "volume", "open", "high", "low", "close")


def validate_record(value: bytes, received_us: int, max_skew: timedelta) -> dict[str, Any]:
    """The VALIDATED row (without the Kafka position) of one raw record."""
    now = from_micros(received_us)
    try:
        tick = parse_tick(decode(value), now, max_skew)
    except InvalidTick as error:
        dead = reject(value, error, now)
        return {
            "symbol": "",
            "kind": KIND_INVALID,
            "reason": dead.reason,
            "payload": dead.payload,
            "dead_source": dead.source,
            "dead_symbol": dead.symbol,
            "received_us": received_us,
        }
    return tick_row(tick)


def tick_row(tick: Tick) -> dict[str, Any]:
    row: dict[str, Any] = {
        "symbol": tick.symbol,
        "kind": KIND_TICK,
        "source": tick.source,
        "asset_type": tick.asset_type.value,
        "event_us": micros(tick.event_time),
        "ingest_us": micros(tick.ingest_time),
    }
    row.update({name: getattr(tick, name) for name in _TICK_FIELDS})
    return row


def validate_batches(max_skew: timedelta) -> Any:
    """The mapInPandas function: frames of (value, topic, partition, offset, received_us)."""

    def validate(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for chunk in frames:
            rows = []
            for value, topic, partition, offset, received_us in zip(
                chunk["value"],
                chunk["topic"],
                chunk["partition"],
                chunk["offset"],
                chunk["received_us"],
                strict=True,
            ):
                row = validate_record(bytes(value), int(received_us), max_skew)
                row.update(topic=topic, partition=int(partition), offset=int(offset))
                rows.append(row)
            yield frame(rows, VALIDATED)

    return validate
