"""Pure helpers of the read side: range parsing, rolling mean, z-score bins (by hand)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tickwatch.web.queries import parse_range, rolling_mean, z_bins


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


def test_rolling_mean_skips_nulls_and_keeps_length() -> None:
    values = [1.0, None, 3.0, 5.0, None]
    # size 2: [1], [1, None], [None, 3], [3, 5], [5, None]
    assert rolling_mean(values, 2) == [1.0, 1.0, 3.0, 4.0, 5.0]
    assert rolling_mean([None, None], 3) == [None, None]
    assert rolling_mean([], 12) == []


def test_z_bins_are_unit_wide_signed_and_clamped() -> None:
    bins = z_bins([3.2, 3.99, -3.5, 4.0, 12.0, -40.0], limit=5)
    counts = {b.low: b.count for b in bins}
    assert [b.low for b in bins] == [-5, -4, -3, -2, -1, 0, 1, 2, 3, 4]
    assert all(b.high == b.low + 1 for b in bins)
    assert counts[3] == 2  # 3.2 and 3.99
    assert counts[-4] == 1  # -3.5 lies in [-4, -3)
    assert counts[4] == 2  # 4.0, and 12 clamped into the top bin
    assert counts[-5] == 1  # -40 clamped into the bottom bin
    assert sum(counts.values()) == 6
