"""Helpers of the read side: range parsing, rolling volatility, z-score bins (by hand)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, true

from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity, Window
from tickwatch.store import SqlStore
from tickwatch.web import aggregates
from tickwatch.web.queries import parse_range, z_bins


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90m", timedelta(minutes=90)),
        ("6h", timedelta(hours=6)),
        ("24h", timedelta(days=1)),
        ("7d", timedelta(days=7)),
        ("1.5h", timedelta(minutes=90)),
        ("all", None),
    ],
)
def test_parse_range(text: str, expected: timedelta | None) -> None:
    assert parse_range(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "yesterday", "-1h", "24H"])
def test_parse_range_rejects_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match="24h"):
        parse_range(text)


def test_rolling_volatility_skips_nulls_per_symbol(tmp_path: Path) -> None:
    """Relative volatility = volatility / close * 100; close 200 makes it half the volatility."""
    store = SqlStore(f"sqlite:///{tmp_path / 't.db'}")
    start = datetime(2024, 3, 4, 10, tzinfo=UTC)

    def window(symbol: str, i: int, volatility: float | None) -> Window:
        at = start + timedelta(minutes=5 * i)
        end, bar = at + timedelta(minutes=5), (200, 200, 200, 200)
        return Window(symbol, AssetType.STOCK, at, end, *bar, None, 2, None, 0.0, volatility, {})

    rows = [
        window(symbol, i, volatility)
        for symbol, volatilities in (("A", [2.0, None, 6.0, 10.0, None]), ("B", [None, 8.0]))
        for i, volatility in enumerate(volatilities)
    ]
    store.write(rows, [])
    t = aggregates.C
    query = select(t.c.symbol, aggregates.rolling_volatility(windows=2)).order_by(
        t.c.symbol, t.c.window_start
    )
    with store.engine.connect() as conn:
        got = [tuple(r) for r in conn.execute(query)]
    # A relative: 1, None, 3, 5, None; means of the last two of each: [1], [1, None],
    # [None, 3], [3, 5], [5, None]; B starts afresh: [None], [None, 4]
    assert got == [("A", 1.0), ("A", 1.0), ("A", 3.0), ("A", 4.0), ("A", 5.0),
                   ("B", None), ("B", 4.0)]  # fmt: skip


def _anomalies(z_scores: list[float], path: Path) -> Engine:
    """A store holding one anomaly per z-score (each its own symbol, so each its own row)."""
    start = datetime(2024, 3, 4, 10, tzinfo=UTC)
    store = SqlStore(f"sqlite:///{path}")
    end, kind, high = start + timedelta(minutes=5), AnomalyType.PRICE_SPIKE, Severity.HIGH
    rows = [
        Anomaly(f"S{i}", AssetType.STOCK, start, end, kind, 1.0, 0.0, 1.0, z, high, start)
        for i, z in enumerate(z_scores)
    ]
    store.write([], rows)
    return store.engine


def test_z_bins_are_unit_wide_signed_and_clamped(tmp_path: Path) -> None:
    engine = _anomalies([3.2, 3.99, -3.5, 4.0, 12.0, -40.0], tmp_path / "t.db")
    with engine.connect() as conn:
        counts = {k: n for k, n in conn.execute(aggregates.z_bins(true(), limit=5))}
    # 3.2 and 3.99 in [3, 4); -3.5 in [-4, -3); 4.0, and 12 clamped, in the top bin [4, inf);
    # -40 clamped into the bottom bin (-inf, -4)
    assert counts == {3: 2, -4: 1, 4: 2, -5: 1}
    bins = z_bins(counts, limit=5)
    assert [b.low for b in bins] == [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert all(b.high == b.low + 1 for b in bins)
    assert [b.count for b in bins] == [1, 1, 0, 0, 0, 0, 0, 0, 2, 2]
    assert (bins[0].label, bins[1].label, bins[-1].label) == ("< -4", "-4", "≥ 4")
