"""A validated tick as the JSON record of replay files and the bus, and dead-letter payloads.

Below `normalize` (which turns untrusted records into ticks) and the engine (which refuses some
valid ticks): both write dead letters with these payloads, so neither imports the other.
"""

from __future__ import annotations

from typing import Any

import orjson

from tickwatch.model import AssetType, Rejected, Tick


def tick_to_record(tick: Tick) -> dict[str, Any]:
    """The JSON-ready record of a tick (the replay and bus format)."""
    record: dict[str, Any] = {
        "source": tick.source,
        "asset_type": tick.asset_type.value,
        "symbol": tick.symbol,
        "event_time": tick.event_time.isoformat(),
        "ingest_time": tick.ingest_time.isoformat(),
        "price": tick.price,
        "volume": tick.volume,
    }
    if tick.is_bar:
        record.update(open=tick.open, high=tick.high, low=tick.low, close=tick.close)
    return record


def tick_payload(tick: Tick) -> str:
    """The dead-letter payload of a validated tick (late, or refused by the engine): its record
    without `ingest_time`.

    The payload is part of the dead letter's key, and the ingest time of a replayed tick is the
    wall clock of that replay: with it, every replay of a file would add another copy of the
    same late tick. The ingest time stays in the dead letter's `received_at`.
    """
    record = tick_to_record(tick)
    del record["ingest_time"]
    return payload_text(record)


def asset_conflict(tick: Tick, series: AssetType) -> Rejected:
    """The dead letter of a tick whose symbol is already a series of the other asset type.

    Series are keyed by symbol (the stores key rows by `(symbol, window_start)`), so a stock and
    a crypto asset of one name would merge into one series: the asset type seen first keeps the
    name and ticks of the other are refused, with a reason naming both.
    """
    return Rejected(
        "invalid",
        f"asset_type conflict: {tick.symbol[:40]!r} is a {series.value} series; a "
        f"{tick.asset_type.value} tick of that name would merge into it (rename one of them)",
        tick_payload(tick),
        tick.source,
        tick.symbol,
        tick.ingest_time,
    )


def payload_text(record: object) -> str:
    """The record as text for a dead letter, whatever it is."""
    if isinstance(record, str | bytes):
        return record if isinstance(record, str) else record.decode("utf-8", "replace")
    try:
        return orjson.dumps(record, default=str).decode()
    except TypeError:
        return repr(record)
