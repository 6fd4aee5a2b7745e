"""Replaying a file again and trusting the clock (issue 14, classes 3 and 5).

- Class 3: a late tick's dead letter used to carry the replay's wall-clock `ingest_time` in its
  payload, which is part of the dead letter's key, so every replay of a file added another copy.
  Replaying a file three times must leave exactly the dead letters of one replay.
- Class 5: a far-future `event_time` with a matching `ingest_time` used to pass the skew check
  (it compared the two times the record supplied), and afterwards every default view was empty.
  Skew is judged against the clock of the process that receives the record.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.ledger import Ledger
from tests.reliability.test_input_files import (
    LETTERS,
    WINDOWS,
    outcome,
    replay,
    rows,
    summary,
    valid_rows,
    write_jsonl,
)
from tickwatch.config import load_settings
from tickwatch.processor import Processor
from tickwatch.store import SqlStore
from tickwatch.store.sql import dead_letters

AREA = "input files (replay)"


def late_file(tmp_path: Path) -> tuple[Path, int]:
    """Valid ticks, then three that arrive 40 minutes after their windows closed."""
    good = valid_rows(windows=12)
    late = [
        {**r, "event_time": (datetime.fromisoformat(r["event_time"]) + timedelta(seconds=20))
         .isoformat(), "price": 101.0 + i}
        for i, r in enumerate(good[:6:2])
    ]  # fmt: skip
    return write_jsonl(tmp_path / "late.jsonl", good + late), len(late)


@pytest.mark.parametrize("exact", [False, True], ids=["fast lane", "exact lane"])
def test_replaying_a_file_with_late_ticks_keeps_one_dead_letter_each(
    ledger: Ledger, tmp_path: Path, exact: bool
):
    path, late = late_file(tmp_path)
    for _ in range(3):
        assert summary(replay(tmp_path / "out", path, exact=exact))["late"] == late
    result = replay(tmp_path / "out", path, exact=exact)
    found = outcome(result, tmp_path / "out")
    ledger.record(AREA, "late ticks, the same file replayed 4 times", late,
                  f"exit 0, 12 windows, {late} dead letters", found)  # fmt: skip
    assert [kind for kind, _ in rows(tmp_path / "out", LETTERS)] == ["late"] * late
    assert len(rows(tmp_path / "out", WINDOWS)) == 12


def test_late_dead_letters_do_not_depend_on_the_receiving_clock(tmp_path: Path):
    """The same records through the processor at two different wall clocks: one set of rows."""
    path, late = late_file(tmp_path)
    records = [json.loads(line) for line in path.read_text().splitlines()]
    store = SqlStore("sqlite://")
    for now in (datetime(2024, 3, 5, tzinfo=UTC), datetime(2024, 3, 6, 7, 8, 9, 10, tzinfo=UTC)):
        processor = Processor(load_settings(), store, None, clock=lambda now=now: now)
        processor.handle(records)
        processor.finish()
        assert processor.counters.late == late
    assert store.count(dead_letters) == late
    store.close()


FUTURE = datetime.now(UTC) + timedelta(days=365 * 176)  # about the year 2200
BEFORE = FUTURE - timedelta(seconds=1)


@pytest.mark.parametrize("exact", [False, True], ids=["fast lane", "exact lane"])
@pytest.mark.parametrize(
    "fields",
    [
        {"event_time": FUTURE.isoformat(), "ingest_time": FUTURE.isoformat()},
        {
            "event_time": FUTURE.isoformat(),
            "ingest_time": (FUTURE - timedelta(seconds=1)).isoformat(),
        },
        {"ingest_time": FUTURE.isoformat()},
    ],
    ids=["event and ingest time", "ingest time just before", "ingest time alone"],
)
def test_far_future_times_are_judged_against_the_receiving_clock(
    ledger: Ledger, tmp_path: Path, exact: bool, fields: dict[str, str]
):
    good = valid_rows(windows=12)
    bad = [{**good[3], **fields, "note": i} for i in range(2)]
    path = write_jsonl(tmp_path / "future.jsonl", good[:10] + bad + good[10:])
    result = replay(tmp_path / "out", path, exact=exact)
    case = f"far-future time with a matching record time ({', '.join(sorted(fields))})"
    ledger.record(AREA, case, 2, "exit 0, 12 windows, 2 dead letters",
                  outcome(result, tmp_path / "out"))  # fmt: skip
    assert summary(result)["rejected"] == 2
    reasons = [reason for _, reason in rows(tmp_path / "out", LETTERS)]
    assert all("after the receiving clock" in reason for reason in reasons), reasons
    (latest,) = rows(tmp_path / "out", "select max(window_start) from clean_market_data")[0]
    assert latest.startswith("2024-03-04T15:25")
