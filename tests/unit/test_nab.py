"""NAB's standard-profile scoring on hand cases (the formulas of nab/sweeper.py, by hand)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickwatch import nab
from tickwatch.errors import SourceError

T0 = datetime(2014, 1, 1, tzinfo=UTC)
STEP = timedelta(minutes=5)


def series(rows: int = 1000, windows: tuple[tuple[int, int], ...] = ((500, 599),)) -> nab.NabSeries:
    times = [T0 + i * STEP for i in range(rows)]
    spans = [(times[a], times[b]) for a, b in windows]
    return nab.NabSeries("cat/x.csv", times, [float(i % 7) for i in range(rows)], spans)


def sigma(x: float) -> float:
    return 2 / (1 + math.exp(5 * x)) - 1


def test_null_scores_zero_and_perfect_scores_one_hundred() -> None:
    s = series()
    assert nab.normalized([nab.score_file(s, [])]) == 0.0
    perfect = nab.score_file(s, [s.times[500]])  # the window's first row
    assert perfect.raw == pytest.approx(1.0)
    assert nab.normalized([perfect]) == pytest.approx(100.0)


def test_a_late_detection_in_the_window_scores_less() -> None:
    s = series()
    # row 589 of [500, 599]: position -(599 - 589 + 1) / 100 = -0.11
    got = nab.score_file(s, [s.times[589]])
    assert got.raw == pytest.approx(sigma(-0.11) / sigma(-1.0))
    # only the best detection of a window counts
    both = nab.score_file(s, [s.times[589], s.times[520]])
    assert both.raw == pytest.approx(sigma(-(599 - 520 + 1) / 100) / sigma(-1.0))


def test_false_positives_before_and_after_a_window() -> None:
    s = series()
    before = nab.score_file(s, [s.times[300]])  # after probation (150), before any window
    assert before.raw == pytest.approx(-1.0 - 0.11)
    # 50 rows after the window's end: position 50 / (100 - 1)
    after = nab.score_file(s, [s.times[649]])
    assert after.raw == pytest.approx(-1.0 + 0.11 * sigma(50 / 99))
    assert after.false_positives == 1


def test_probationary_detections_are_ignored() -> None:
    s = series()
    # probation = min(floor(0.15 * 1000), 0.15 * 5000) = 150 rows
    assert nab.score_file(s, [s.times[149]]).raw == pytest.approx(-1.0)
    assert nab.score_file(s, [s.times[150]]).false_positives == 1


def test_a_detection_between_rows_counts_at_the_next_row() -> None:
    s = series()
    assert nab.score_file(s, [s.times[499] + timedelta(minutes=1)]).raw == pytest.approx(1.0)


def test_records_follow_design_mapping() -> None:
    s = nab.NabSeries("c/f.csv", [T0, T0 + STEP], [-3.0, 5.0], [])
    first, second = s.records()
    assert (first["price"], first["volume"]) == (1.0, 0.0)  # value - min + 1; value - min(min, 0)
    assert (second["price"], second["volume"]) == (9.0, 8.0)
    assert first["symbol"] == "NAB_f" and first["asset_type"] == "crypto"


def test_load_reads_a_nab_directory(tmp_path: Path) -> None:
    (tmp_path / "data" / "cat").mkdir(parents=True)
    (tmp_path / "labels").mkdir()
    (tmp_path / "data" / "cat" / "f.csv").write_text(
        "timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,2\n"
    )
    (tmp_path / "labels" / "combined_windows.json").write_text(
        '{"cat/f.csv": [["2014-01-01 00:05:00.000000", "2014-01-01 00:05:00.000000"]]}'
    )
    (loaded,) = nab.load(tmp_path)
    assert loaded.values == [1.0, 2.0] and loaded.windows == [(T0 + STEP, T0 + STEP)]
    with pytest.raises(SourceError, match=r"combined_windows\.json"):
        nab.load(tmp_path / "data")
