"""The Spark job's per-symbol state (tickwatch.spark.state): explicit, versioned, restartable.

- A version-1 state row written out by hand (as a checkpoint of that release holds it) restores
  and goes on: the numbers of the window it closes are worked out by hand below.
- Cutting one symbol's stream into micro-batches with a snapshot and a restore between each
  gives the rows of one engine fed the whole stream (the state loses nothing).
- A state of a newer version, or built with other window settings, is refused.
"""

from __future__ import annotations

import math
import random
import struct
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.spark_stream import tick_stream
from tickwatch.bus.kafka import encode
from tickwatch.clock import micros
from tickwatch.decoding import decode
from tickwatch.engine import EngineConfig, EngineOutput
from tickwatch.engine.batch import TickBatch
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.errors import ConfigError, InvalidTick
from tickwatch.model import AnomalyType, AssetType, Feature, Severity, Tick
from tickwatch.normalize import parse_tick
from tickwatch.spark.schemas import STATE, STATE_VERSION
from tickwatch.spark.state import _windows, restore, snapshot

pytestmark = [pytest.mark.spark]

NOW = datetime(2030, 1, 1, tzinfo=UTC)
DAY = datetime(2024, 3, 4, tzinfo=UTC)
CONFIG = EngineConfig()


def _clock() -> datetime:
    return NOW


def _at(hhmm: str) -> datetime:
    hours, minutes = hhmm.split(":")
    return DAY + timedelta(hours=int(hours), minutes=int(minutes))


def _us(hhmm: str) -> int:
    return micros(_at(hhmm))


def _tick(hhmm: str, price: float, volume: float, source: str = "sim") -> Tick:
    at = _at(hhmm)
    return Tick(source, AssetType.CRYPTO, "bitcoin", at, at, price, volume)


NAN = math.nan


def _f8(*values: float) -> bytes:  # the documented layout: little-endian doubles
    return struct.pack(f"<{len(values)}d", *values)


def _i8(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}q", *values)


def _i4(*values: int) -> bytes:
    return struct.pack(f"<{len(values)}i", *values)


NONE = -(2**63)  # the documented "none yet"
BUCKETS = 16
# Written by hand as a version-1 checkpoint holds it, for a bucket of two symbols. bitcoin:
# windows up to 12:00 closed at watermark 12:00 (largest event 12:10), the open windows 12:00
# (two ticks) and 12:10 (one tick), six past price returns of 0 and 1 %, no usable volume or
# volatility history, one remembered key of the closed window 11:55. AAPL: a stock seen once.
VERSION_1 = {
    "version": 1,
    "settings": "window_us=300000000 lateness_us=600000000 lookback=20 buckets=16",
    "symbols": '["bitcoin", "AAPL"]',
    "asset_types": '["crypto", "stock"]',
    "max_event_us": _i8(_us("12:10"), _us("09:30")),
    "close_watermark_us": _i8(_us("12:00"), NONE),
    "history_price_return_pct": _f8(*[NAN] * 14, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, *[NAN] * 20),
    "history_volume": _f8(*[NAN] * 40),
    "history_volatility": _f8(*[NAN] * 40),
    "sources": '["sim"]',
    "open_symbol": _i4(0, 0, 1, 0),
    "open_source": _i4(0, 0, 0, 0),
    "open_event_us": _i8(_us("12:00"), _us("12:01"), _us("09:30"), _us("12:10")),
    "open_ingest_us": _i8(_us("12:00"), _us("12:01"), _us("09:30"), _us("12:10")),
    "open_price": _f8(100.0, 103.0, 170.0, 104.0),
    "open_volume": _f8(2.0, 3.0, 9.0, 1.0),
    "open_open": _f8(NAN, NAN, NAN, NAN),
    "open_high": _f8(NAN, NAN, NAN, NAN),
    "open_low": _f8(NAN, NAN, NAN, NAN),
    "open_close": _f8(NAN, NAN, NAN, NAN),
    "seen_symbol": _i4(0),
    "seen_source": _i4(0),
    "seen_event_us": _i8(_us("11:58")),
}


def _row(values: dict[str, object]) -> tuple[object, ...]:
    return tuple(values[name] for name in STATE.fieldNames())


def test_a_version_1_state_restores_and_closes_its_window() -> None:
    assert set(VERSION_1) == set(STATE.fieldNames())
    engine = restore(_row(VERSION_1), CONFIG, BUCKETS, _clock)
    ticks = [
        _tick("11:58", 1.5, 1.0),  # the remembered key: a duplicate
        _tick("11:58", 1.5, 1.0, source="other"),  # window 11:55 closed: late
        _tick("12:16", 105.0, 1.0),  # watermark 12:06 closes window 12:00
    ]
    out = engine.process_batch(TickBatch.from_ticks(ticks))
    result = out.to_engine_output()
    assert result.duplicates == 1
    assert [r.kind for r in result.late] == ["late"]
    assert result.late[0].source == "other"
    [window] = result.windows
    assert (window.window_start, window.window_end) == (_at("12:00"), _at("12:05"))
    assert (window.open, window.high, window.low, window.close) == (100.0, 103.0, 100.0, 103.0)
    assert window.volume == 5.0 and window.tick_count == 2
    assert window.vwap == pytest.approx((100 * 2 + 103 * 3) / 5)
    assert window.price_return_pct == pytest.approx(3.0)
    assert window.volatility == pytest.approx(math.sqrt(4.5))  # sample std of 100 and 103
    # baseline: 0, 1, 0, 1, 0, 1 -> mean 0.5, sample std sqrt(6 * 0.25 / 5)
    score = window.scores[Feature.PRICE_RETURN]
    std = math.sqrt(0.3)
    assert (score.mean, score.std) == (pytest.approx(0.5), pytest.approx(std))
    assert score.z == pytest.approx((3.0 - 0.5) / std)  # 4.56: medium
    assert window.scores[Feature.VOLUME].z is None  # no volume history
    [anomaly] = result.anomalies
    assert anomaly.anomaly_type is AnomalyType.PRICE_SPIKE
    assert anomaly.severity is Severity.MEDIUM
    # and the state goes on: the new return joins the history, two windows stay open
    after = dict(zip(STATE.fieldNames(), snapshot(engine, BUCKETS), strict=True))
    assert after["version"] == STATE_VERSION
    history = struct.unpack("<40d", after["history_price_return_pct"])
    assert history[13:20] == pytest.approx([0, 1, 0, 1, 0, 1, 3])
    assert all(math.isnan(h) for h in history[20:])  # AAPL's untouched
    assert after["open_symbol"] == _i4(1, 0, 0)  # AAPL's tick stays open
    assert after["open_event_us"] == _i8(_us("09:30"), _us("12:10"), _us("12:16"))
    assert after["max_event_us"] == _i8(_us("12:16"), _us("09:30"))


def _ticks() -> list[Tick]:
    found = []
    for message in tick_stream():
        try:
            found.append(parse_tick(decode(message.value), NOW, timedelta(minutes=5)))
        except InvalidTick:
            continue
    return found


def _rows(out: EngineOutput) -> tuple[object, ...]:
    """The rows in key order (one batch lists them by symbol, several by batch)."""
    return (
        sorted(out.windows, key=lambda w: (w.symbol, w.window_start)),
        sorted(out.anomalies, key=lambda a: (a.symbol, a.window_start, a.anomaly_type.value)),
        out.late,
        out.duplicates,
    )


def test_snapshot_and_restore_between_batches_lose_nothing() -> None:
    """All the stream's symbols in one bucket, cut at random points (1 to 120 ticks)."""
    ticks = _ticks()  # three symbols interleaved, in the order they were sent
    expected = ColumnarEngine(CONFIG, _clock).process_batch(TickBatch.from_ticks(ticks))
    want = expected.to_engine_output()
    chooser = random.Random(5)
    cut = EngineOutput()
    state = None
    at = 0
    while at < len(ticks):
        size = chooser.choice([1, 2, 7, 40, 120])
        engine = restore(state, CONFIG, BUCKETS, _clock)
        part = ticks[at : at + size]
        cut.extend(engine.process_batch(TickBatch.from_ticks(part)).to_engine_output())
        state = snapshot(engine, BUCKETS)
        at += size
    assert len(want.windows) >= 90 and want.duplicates + len(want.late) >= 3
    assert _rows(cut) == _rows(want)


def test_a_newer_state_or_other_settings_are_refused() -> None:
    newer = _row({**VERSION_1, "version": STATE_VERSION + 1})
    with pytest.raises(ConfigError, match="newer tickwatch"):
        restore(newer, CONFIG, BUCKETS, _clock)
    wider = EngineConfig(window=timedelta(minutes=15))
    with pytest.raises(ConfigError, match="new checkpoint folder"):
        restore(_row(VERSION_1), wider, BUCKETS, _clock)
    with pytest.raises(ConfigError, match="bucket"):
        restore(_row(VERSION_1), CONFIG, 32, _clock)


def test_window_rows_carry_the_store_columns_and_the_topics_json() -> None:
    """`advance` builds window rows from the engine's columns; each must say what the
    `Window` object says, and carry the bytes the embedded pipeline publishes for it."""
    result = ColumnarEngine(CONFIG, _clock).process_batch(TickBatch.from_ticks(_ticks()))
    windows = result.to_engine_output().windows
    rows = _windows(result)
    assert rows is not None and len(windows) >= 90 and len(rows) == len(windows)
    assert list(rows["json"]) == [encode(w).decode() for w in windows]
    assert set(rows["kind"]) == {"window"}
    assert list(rows["window_start_us"]) == [micros(w.window_start) for w in windows]
    assert list(rows["window_end_us"]) == [micros(w.window_end) for w in windows]
    for name in ("close", "volume", "tick_count", "vwap", "volatility", "price_return_pct_z"):
        want = [w.as_row()[name] for w in windows]
        got = [None if isinstance(v, float) and math.isnan(v) else v for v in rows[name]]
        assert got == want, name
