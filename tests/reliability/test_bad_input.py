"""Bad input at the record entry (replay lines and bus messages share it): every bad record is
dead-lettered with a reason and counted, the pipeline keeps going, and no valid tick is lost:
the stored rows equal those of a clean run of the valid ticks alone."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.ledger import Ledger
from tickwatch.config import load_settings
from tickwatch.processor import Processor
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import MarketSimulator
from tickwatch.store import SqlStore
from tickwatch.store.sql import clean_market_data, dead_letters, market_anomalies

START = datetime(2024, 3, 4, 14, 30, tzinfo=UTC)
NOW = datetime(2024, 3, 5, tzinfo=UTC)
AREA = "records (replay lines, bus messages)"
EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _valid() -> list[dict[str, Any]]:
    sim = MarketSimulator(["AAPL"], ["bitcoin"], seed=11, ticks_per_window=8, anomaly_rate=0.08)
    return [tick_to_record(t) for w in sim.windows(START, START + timedelta(hours=3)) for t in w]


VALID = _valid()


def run(records: list[Any]) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], int, Any]:
    """Process `records` in batches; (clean rows, anomaly rows, dead letters, counters)."""
    store = SqlStore("sqlite://")
    processor = Processor(load_settings(), store, None, clock=lambda: NOW)
    for i in range(0, len(records), 300):
        processor.handle(records[i : i + 300])
    processor.finish()
    with store.engine.connect() as conn:
        clean = [tuple(r) for r in conn.execute(select(clean_market_data))]
        anomalies = [
            tuple(r)[:-1]
            for r in conn.execute(select(market_anomalies))  # without detected_at
        ]
    letters = store.count(dead_letters)
    store.close()
    return sorted(clean), sorted(anomalies), letters, processor.counters


CLEAN = run(VALID)


def check(ledger: Ledger, case: str, records: list[Any], bad: int, valid=CLEAN) -> None:
    clean, anomalies, letters, counters = run(records)
    expected = f"{len(valid[0])} windows, {len(valid[1])} anomalies, {bad} dead letters"
    found = f"{len(clean)} windows, {len(anomalies)} anomalies, {letters} dead letters"
    ledger.record(AREA, case, bad, expected, found)
    assert counters.rejected + counters.late == bad
    assert letters == bad
    assert clean == valid[0]
    assert anomalies == valid[1]


def inject(rnd: random.Random, bad: list[Any]) -> list[Any]:
    records: list[Any] = list(VALID)
    for item in bad:
        records.insert(rnd.randrange(len(records) + 1), item)
    return records


def mutate(field: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(lambda base, value: {**base, field: value}, st.sampled_from(VALID), values)


malformed_json = st.binary(max_size=60).filter(lambda b: not _is_object(b)) | st.sampled_from(
    [b"{", b'{"price": 1', b"[1, 2]", b"null", b'"text"', b"\xff\xfe", b'{"a": NaN}']
)


def _is_object(raw: bytes) -> bool:
    try:
        return isinstance(orjson.loads(raw), dict)
    except orjson.JSONDecodeError:
        return False


wrong_types = st.one_of(
    *(
        mutate(
            name, st.sampled_from([[1], {"a": 1}, True] if name != "volume" else [[1], {}, True])
        )
        for name in ("price", "volume", "event_time", "symbol", "asset_type", "source")
    )
)
missing = st.builds(
    lambda base, name: {k: v for k, v in base.items() if k != name},
    st.sampled_from(VALID),
    st.sampled_from(["source", "asset_type", "symbol", "event_time", "price"]),
)
huge = (
    mutate("price", st.floats(1e12, 1e308))
    | mutate("volume", st.floats(1e15, 1e308))
    | (mutate("price", st.sampled_from(["1e400", "-1e400"])))
)
non_finite = mutate(
    "price", st.sampled_from([math.nan, math.inf, -math.inf, "NaN", "Infinity"])
) | (mutate("volume", st.sampled_from([math.nan, math.inf, "nan"])))
far_future = st.builds(
    lambda base, days: {**base, "event_time": (NOW + timedelta(days=days)).isoformat(),
                        "ingest_time": None},
    st.sampled_from(VALID),
    st.integers(1, 36500),
)  # fmt: skip
ancient = mutate(
    "event_time",
    st.sampled_from(["1900-01-01T00:00:00+00:00", "0001-01-01T00:00:00Z", "-1", -86400 * 365]),
)
beyond_datetime = st.builds(
    lambda base, fields: {**base, **fields},
    st.sampled_from(VALID),
    st.sampled_from([
        {"event_time": "0001-01-01T00:00:00+01:00"},  # year 0 in UTC
        {"event_time": "9999-12-31T23:59:59-01:00"},  # year 10000 in UTC
        {"event_time": -99_999_999_999},  # before year 1
        {"ingest_time": "9999-12-31T23:59:59.999999Z"},
        {"event_time": "9999-12-31T23:59:59Z", "ingest_time": "9999-12-31T23:59:59Z"},
    ]),
)  # fmt: skip
far_future_with_ingest = st.builds(
    lambda base, days: {**base, "event_time": (NOW + timedelta(days=days)).isoformat(),
                        "ingest_time": (NOW + timedelta(days=days)).isoformat()},
    st.sampled_from(VALID),
    st.integers(1, 36500),
)  # fmt: skip

BAD_CLASSES: dict[str, st.SearchStrategy[Any]] = {
    "malformed JSON": malformed_json,
    "wrong types": wrong_types,
    "missing fields": missing,
    "huge values": huge,
    "NaN and infinities": non_finite,
    "far-future timestamps": far_future,
    "ancient timestamps": ancient,
    "times beyond what datetime holds": beyond_datetime,
    "far-future times with a matching ingest_time": far_future_with_ingest,
}


@pytest.mark.parametrize("case", list(BAD_CLASSES))
def test_bad_records_are_dead_lettered_and_no_valid_tick_is_lost(ledger: Ledger, case: str):
    @EXAMPLES
    @given(st.lists(BAD_CLASSES[case], min_size=1, max_size=8), st.randoms(use_true_random=False))
    def scenario(bad: list[Any], rnd: random.Random) -> None:
        # a unique tag per record: identical payloads would share one dead-letter row
        tagged = [
            {**b, "note": i} if isinstance(b, dict) else b + b" #%d" % i for i, b in enumerate(bad)
        ]
        check(ledger, case, inject(rnd, tagged), len(tagged))

    scenario()


@EXAMPLES
@given(st.lists(st.text(min_size=1, max_size=12).filter(str.isprintable), min_size=1, max_size=4))
def test_unicode_symbols_are_ordinary_symbols(ledger: Ledger, names: list[str]):
    names = [n.strip() for n in names if n.strip()]
    extra = [{**r, "symbol": name} for name in set(names) for r in VALID if r["symbol"] == "AAPL"]
    clean, _, letters, counters = run(VALID + extra)
    expected = len(CLEAN[0]) + len(set(names)) * sum(1 for row in CLEAN[0] if row[0] == "AAPL")
    ledger.record(AREA, "unicode symbols (valid)", len(set(names)), f"{expected} windows",
                  f"{len(clean)} windows")  # fmt: skip
    assert (letters, counters.rejected) == (0, 0)
    assert len(clean) == expected


@EXAMPLES
@given(st.integers(0, 2**32), st.floats(0.05, 0.5))
def test_duplicates_count_once(ledger: Ledger, seed: int, share: float):
    rnd = random.Random(seed)
    copies = [r for r in VALID if rnd.random() < share]
    records = sorted(VALID + copies, key=lambda r: r["event_time"])  # each copy after its original
    clean, anomalies, letters, counters = run(records)
    ledger.record(AREA, "duplicates", len(copies), f"{len(CLEAN[0])} windows, 0 dead letters",
                  f"{len(clean)} windows, {letters} dead letters")  # fmt: skip
    assert counters.duplicates == len(copies)
    assert (clean, anomalies, letters) == (CLEAN[0], CLEAN[1], 0)


@EXAMPLES
@given(st.integers(0, 2**32))
def test_out_of_order_bursts_within_the_lateness_change_nothing(ledger: Ledger, seed: int):
    rnd = random.Random(seed)

    def delay(r: dict[str, Any]) -> datetime:
        return datetime.fromisoformat(r["event_time"]) + timedelta(seconds=rnd.uniform(0, 599))

    records = sorted(VALID, key=delay)
    clean, anomalies, letters, _ = run(records)
    moved = sum(1 for a, b in zip(records, VALID, strict=True) if a is not b)
    ledger.record(AREA, "out-of-order bursts within lateness", moved,
                  f"{len(CLEAN[0])} windows", f"{len(clean)} windows")  # fmt: skip
    assert (clean, anomalies, letters) == (CLEAN[0], CLEAN[1], 0)


@EXAMPLES
@given(st.integers(0, 2**32), st.integers(1, 10))
def test_ticks_later_than_the_lateness_are_dead_lettered_not_dropped(
    ledger: Ledger, seed: int, count: int
):
    rnd = random.Random(seed)
    held = set(rnd.sample(range(len(VALID) - 400), count))  # well before the end of the stream
    kept = [r for i, r in enumerate(VALID) if i not in held]
    late = [VALID[i] for i in sorted(held)]
    valid = run(kept)
    check(ledger, "late bursts beyond lateness", kept + late, len(late), valid=valid)
