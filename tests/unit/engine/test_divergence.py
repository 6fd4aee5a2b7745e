"""Cross-venue divergence on hand-built tick sequences whose answer is worked out by hand.

Gaps are |a - b| / ((a + b) / 2) * 10,000 bps, computed in the comments. Thresholds in every
test: 50 bps for 30 s, 1,000 bps a fault, prices stale after 60 s.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickwatch.engine.batch import TickBatch
from tickwatch.engine.divergence import Divergence, DivergenceTracker
from tickwatch.model import AssetType, Tick

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BTC = "BTC-USD"


def at(second: float) -> datetime:
    return T0 + timedelta(seconds=second)


def tick(venue: str, second: float, price: float, symbol: str = BTC) -> Tick:
    return Tick(venue, AssetType.CRYPTO, symbol, at(second), at(second), price)


def tracker() -> DivergenceTracker:
    return DivergenceTracker(bps=50, seconds=30, fault_bps=1000, stale=60)


def agreed(start: float = 0) -> list[Tick]:
    """Both venues at 50,000 (the first venue's first price is not kept: one venue so far)."""
    return [
        tick("coinbase", start, 50_000),
        tick("kraken", start + 1, 50_000),
        tick("coinbase", start + 2, 50_000),
    ]


def test_a_persistent_divergence_has_its_start_end_and_widest_gap() -> None:
    t = tracker()
    rows = t.observe([
        *agreed(),
        tick("kraken", 10, 50_400),  # 400 / 50,200 = 79.68 bps > 50: starts at 10 s
        tick("kraken", 20, 50_500),  # 500 / 50,250 = 99.50 bps: the widest
        tick("coinbase", 25, 50_000),  # 15 s: not yet flagged
        tick("coinbase", 45, 50_010),  # 490 / 50,255 = 97.50 bps, 35 s >= 30: flagged
        tick("coinbase", 70, 50_450),  # 50 / 50,475 = 9.9 bps: ends at 70 s
    ])  # fmt: skip
    assert rows == [
        Divergence(
            symbol=BTC,
            venues="coinbase|kraken",
            started_at=at(10),
            asset_type=AssetType.CRYPTO,
            ended_at=at(70),
            max_bps=pytest.approx(500 / 50_250 * 10_000),  # type: ignore[arg-type]
            max_at=at(20),
            offender="kraken",  # moved 1 % from where the two agreed; coinbase held
            kind="dislocation",  # coinbase followed kraken up: kraken led a real move
            summary=rows[0].summary,
        )
    ]
    assert "up to 100 bps for 60 s; kraken looks off" in rows[0].summary
    assert t.blips == 0


def test_it_is_reported_when_flagged_and_again_when_it_ends() -> None:
    t = tracker()
    t.observe([*agreed(), tick("kraken", 10, 50_400)])
    flagged = t.observe([tick("coinbase", 40, 50_000)])  # exactly 30 s: flagged
    assert [(r.started_at, r.ended_at) for r in flagged] == [(at(10), None)]
    assert t.observe([tick("coinbase", 41, 50_001)]) == []  # nothing new: no row
    ended = t.observe([tick("kraken", 50, 50_000)])
    assert [(r.started_at, r.ended_at) for r in ended] == [(at(10), at(50))]


def test_a_blip_shorter_than_the_persistence_is_never_flagged() -> None:
    t = tracker()
    rows = t.observe([
        *agreed(),
        tick("kraken", 10, 51_000),  # 1,000 / 50,500 = 198 bps
        tick("coinbase", 39, 50_000),  # 29 s: still short of 30
        tick("kraken", 39.5, 50_000),  # back: a blip
    ])  # fmt: skip
    assert rows == [] and t.blips == 1


def test_a_gap_just_under_the_threshold_is_no_divergence() -> None:
    t = tracker()
    # 50,251 - 50,000 = 251 / 50,125.5 = 50.07 bps (over); 50,250: 250 / 50,125 = 49.88 (under)
    assert t.observe([*agreed(), tick("kraken", 10, 50_250), tick("coinbase", 100, 50_000)]) == []
    rows = t.observe([tick("kraken", 110, 50_251), tick("coinbase", 140, 50_000)])
    assert [(r.started_at, round(r.max_bps, 2)) for r in rows] == [(at(110), 50.07)]


def test_an_excursion_that_comes_back_unfollowed_is_a_data_fault() -> None:
    rows = tracker().observe([
        *agreed(),
        tick("kraken", 10, 51_000),  # 198 bps
        tick("coinbase", 50, 50_020),  # flagged at 40 s
        tick("kraken", 60, 50_010),  # back within 50 bps of its own 50,000: no venue followed
    ])  # fmt: skip
    [row] = rows
    assert (row.ended_at, row.offender, row.kind) == (at(60), "kraken", "data_fault")
    assert "kraken came back to its own price" in row.summary


def test_a_gap_beyond_the_fault_threshold_is_a_data_fault_at_once() -> None:
    rows = tracker().observe([
        *agreed(),
        tick("kraken", 10, 60_000),  # 10,000 / 55,000 = 1,818 bps >= 1,000
        tick("coinbase", 40, 50_000),
    ])  # fmt: skip
    [row] = rows
    assert row.ended_at is None and row.kind == "data_fault"
    assert row.max_bps == pytest.approx(10_000 / 55_000 * 10_000)


def test_with_a_third_venue_the_odd_one_out_looks_off() -> None:
    rows = tracker().observe([
        *agreed(),
        tick("bitstamp", 3, 50_000),
        tick("bitstamp", 10, 49_400),  # 600 / 49,700 = 120.7 bps from both others
        tick("coinbase", 40, 50_005),  # and kraken still at 50,000: median 50,000
        tick("kraken", 41, 49_995),
    ])  # fmt: skip
    assert sorted((r.venues, r.offender, r.started_at) for r in rows) == [
        ("bitstamp|coinbase", "bitstamp", at(10)),
        ("bitstamp|kraken", "bitstamp", at(10)),
    ]


def test_a_venue_that_goes_quiet_ends_the_divergence_as_a_fault() -> None:
    t = tracker()
    t.observe([*agreed(), tick("kraken", 10, 50_400), tick("coinbase", 45, 50_000)])
    # kraken's last price (10 s) is stale after 70 s: the divergence ends there
    [row] = t.observe([tick("coinbase", 80, 50_000)])
    assert (row.started_at, row.ended_at, row.kind) == (at(10), at(70), "data_fault")
    assert "kraken sent nothing for 60 s" in row.summary


def test_one_venue_per_symbol_keeps_no_state() -> None:
    t = tracker()
    ticks = [tick("coinbase", s, 50_000 + s) for s in range(1000)]
    ticks += [Tick("alphavantage", AssetType.STOCK, "IBM", at(s), at(s), 190.0) for s in range(9)]
    assert t.observe(ticks) == []
    assert t._multi == {}  # no prices kept, nothing compared
    assert t.observe_batch(TickBatch.from_ticks(ticks)) == [] and t._multi == {}


def test_a_columnar_batch_gives_what_the_ticks_give() -> None:
    ticks = [
        *agreed(),
        tick("kraken", 10, 50_400),
        tick("coinbase", 45, 50_010),
        tick("coinbase", 70, 50_450),
    ]
    # a third symbol on one venue only, interleaved: never turned into ticks, never compared
    ticks = [x for k, t in enumerate(ticks) for x in (t, tick("bitstamp", k, 3_000, "ETH-USD"))]
    batch = tracker()
    assert batch.observe_batch(TickBatch.from_ticks(ticks)) == tracker().observe(ticks) != []
    assert set(batch._multi) == {BTC}


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 0.0, -50_000.0])
def test_hostile_prices_are_never_compared(bad: float) -> None:
    t = tracker()
    rows = t.observe([
        *agreed(),
        tick("kraken", 10, bad),
        tick("coinbase", 50, 50_000),
        tick("kraken", 51, 50_000),
    ])  # fmt: skip
    assert rows == [] and t.blips == 0


def test_huge_prices_and_late_ticks_do_not_break_it() -> None:
    t = tracker()
    rows = t.observe([
        *agreed(),
        tick("kraken", 10, 1.7e308),  # |a - b| / ((a + b) / 2) = 2: 20,000 bps
        tick("kraken", 5, 50_000),  # older than kraken's price: not compared
        tick("coinbase", 40, 50_000),  # flagged
        tick("coinbase", 41, 1.7e308),  # a + b overflows to inf: gap 0 / inf = 0, not NaN
    ])  # fmt: skip
    assert [(r.started_at, r.ended_at, r.kind) for r in rows] == [(at(10), at(41), "data_fault")]
    assert rows[0].max_bps == pytest.approx(20_000)


def test_an_open_divergence_resumed_after_a_restart_keeps_its_start() -> None:
    before = tracker()
    [open_row] = before.observe([*agreed(), tick("kraken", 10, 50_400), tick("coinbase", 45, 1)])
    assert open_row.ended_at is None
    after = tracker()
    after.resume([open_row])
    rows = after.observe([tick("coinbase", 50, 49_990), tick("kraken", 51, 50_400)])
    assert rows == []  # still open, same widest gap: nothing new
    [ended] = after.observe([tick("kraken", 60, 50_000)])
    assert (ended.started_at, ended.ended_at) == (at(10), at(60))


def oracle(
    ticks: list[Tick], bps: float, seconds: float
) -> list[tuple[datetime, datetime | None, float]]:
    """Two venues, times increasing, nothing stale: the runs of ticks whose gap is over `bps`,
    kept when their last tick is `seconds` after their first; (start, end or None, max)."""
    last: dict[str, float] = {}
    runs: list[list[tuple[datetime, float]]] = []
    ends: list[datetime | None] = []
    inside = False
    for t in ticks:
        last[t.source] = t.price
        if len(last) < 2:
            continue
        a, b = last.values()
        gap = abs(a - b) / ((a + b) / 2) * 10_000
        if gap > bps:
            if not inside:
                runs.append([])
                ends.append(None)
            runs[-1].append((t.event_time, gap))
            inside = True
        elif inside:
            ends[-1] = t.event_time
            inside = False
    return [
        (run[0][0], end, max(g for _, g in run))
        for run, end in zip(runs, ends, strict=True)
        if (run[-1][0] - run[0][0]).total_seconds() >= seconds
    ]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["coinbase", "kraken"]),
            st.sampled_from([1, 5, 10, 15]),
            st.integers(0, 3),
        ),
        min_size=2,
        max_size=60,
    )
)
def test_divergences_match_a_brute_force_oracle(steps: list[tuple[str, int, int]]) -> None:
    # prices 99-103 (gaps of 0 to about 400 bps), seconds apart in order, every venue current
    ticks, second = [], 0
    for venue, step, level in steps:
        second += step
        ticks.append(tick(venue, second, 99.0 + level + (venue == "kraken") * 0.3))
    ticks = [tick("coinbase", 0, 99.0), *ticks]
    t = DivergenceTracker(bps=50, seconds=30, fault_bps=1000, stale=10**9)
    got = sorted((r.started_at, r.ended_at, r.max_bps) for r in t.observe(ticks))
    # coinbase came first: its prices before kraken's first tick are not kept
    first_kraken = next((i for i, x in enumerate(ticks) if x.source == "kraken"), len(ticks))
    want = oracle(ticks[first_kraken:], 50, 30)
    assert [(s, e) for s, e, _ in got] == [(s, e) for s, e, _ in want]
    assert [m for _, _, m in got] == pytest.approx([m for _, _, m in want])
