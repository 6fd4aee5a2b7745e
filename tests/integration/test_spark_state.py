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
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.spark_stream import tick_stream
from tickwatch.decoding import decode
from tickwatch.engine import EngineConfig, EngineOutput
from tickwatch.engine.batch import TickBatch
from tickwatch.engine.columnar import ColumnarEngine
from tickwatch.engine.windows import micros
from tickwatch.errors import ConfigError, InvalidTick
from tickwatch.model import AnomalyType, AssetType, Feature, Severity, Tick
from tickwatch.normalize import parse_tick
from tickwatch.spark.schemas import STATE, STATE_VERSION
from tickwatch.spark.state import restore, snapshot

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


# Written by hand as a version-1 checkpoint holds it: windows up to 12:00 closed at watermark
# 12:00 (largest event 12:10), the open windows 12:00 (two ticks) and 12:10 (one tick), six
# past price returns of 0 and 1 %, no usable volume or volatility history, and one remembered
# key of the closed window 11:55.
VERSION_1 = {
    "version": 1,
    "settings": "window_us=300000000 lateness_us=600000000 lookback=20",
    "asset_type": "crypto",
    "max_event_us": _us("12:10"),
    "close_watermark_us": _us("12:00"),
    "history_price_return_pct": _f8(*[NAN] * 14, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0),
    "history_volume": _f8(*[NAN] * 20),
    "history_volatility": _f8(*[NAN] * 20),
    "open_source": '["sim", "sim", "sim"]',
    "open_event_us": _i8(_us("12:00"), _us("12:01"), _us("12:10")),
    "open_ingest_us": _i8(_us("12:00"), _us("12:01"), _us("12:10")),
    "open_price": _f8(100.0, 103.0, 104.0),
    "open_volume": _f8(2.0, 3.0, 1.0),
    "open_open": _f8(NAN, NAN, NAN),
    "open_high": _f8(NAN, NAN, NAN),
    "open_low": _f8(NAN, NAN, NAN),
    "open_close": _f8(NAN, NAN, NAN),
    "seen_source": '["sim"]',
    "seen_event_us": _i8(_us("11:58")),
}


def _row(values: dict[str, object]) -> tuple[object, ...]:
    return tuple(values[name] for name in STATE.fieldNames())


def test_a_version_1_state_restores_and_closes_its_window() -> None:
    assert set(VERSION_1) == set(STATE.fieldNames())
    engine = restore(_row(VERSION_1), "bitcoin", "crypto", CONFIG, _clock)
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
    after = dict(zip(STATE.fieldNames(), snapshot(engine, "bitcoin"), strict=True))
    assert after["version"] == STATE_VERSION
    history = struct.unpack("<20d", after["history_price_return_pct"])
    assert history[-7:] == pytest.approx([0, 1, 0, 1, 0, 1, 3])
    assert after["open_event_us"] == _i8(_us("12:10"), _us("12:16"))
    assert after["max_event_us"] == _us("12:16")


def _ticks_by_symbol() -> dict[str, list[Tick]]:
    found: dict[str, list[Tick]] = defaultdict(list)
    for message in tick_stream():
        try:
            tick = parse_tick(decode(message.value), NOW, timedelta(minutes=5))
        except InvalidTick:
            continue
        found[tick.symbol].append(tick)
    return found


def _rows(out: EngineOutput) -> tuple[object, ...]:
    return (out.windows, out.anomalies, out.late, out.duplicates)


def test_snapshot_and_restore_between_batches_lose_nothing() -> None:
    chooser = random.Random(5)
    for symbol, ticks in _ticks_by_symbol().items():
        whole = ColumnarEngine(CONFIG, _clock).process_batch(TickBatch.from_ticks(ticks))
        expected = whole.to_engine_output()
        cut = EngineOutput()
        state = None
        at = 0
        while at < len(ticks):
            size = chooser.choice([1, 2, 7, 40])
            engine = restore(state, symbol, ticks[0].asset_type.value, CONFIG, _clock)
            part = ticks[at : at + size]
            cut.extend(engine.process_batch(TickBatch.from_ticks(part)).to_engine_output())
            state = snapshot(engine, symbol)
            at += size
        assert len(expected.windows) >= 30, symbol
        assert _rows(cut) == _rows(expected), symbol
    assert expected.duplicates + len(expected.late) >= 1  # bitcoin: the stream's awkward cases


def test_a_newer_state_or_other_settings_are_refused() -> None:
    newer = _row({**VERSION_1, "version": STATE_VERSION + 1})
    with pytest.raises(ConfigError, match="newer tickwatch"):
        restore(newer, "bitcoin", "crypto", CONFIG, _clock)
    wider = EngineConfig(window=timedelta(minutes=15))
    with pytest.raises(ConfigError, match="new checkpoint folder"):
        restore(_row(VERSION_1), "bitcoin", "crypto", wider, _clock)
