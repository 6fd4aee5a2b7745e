"""The session calendar: NYSE sessions from exchange_calendars, cached per library version."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickwatch.markets import CLOSE_SLOTS, POST_SLOTS, PRE_SLOTS, SessionCalendar


def test_positions_from_a_built_and_from_a_cached_calendar_agree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    moments = [
        datetime(2019, 3, 15, 13, 30, tzinfo=UTC),  # 09:30 EDT: the open
        datetime(2019, 3, 15, 19, 55, tzinfo=UTC),  # 15:55 EDT: the closing window
        datetime(2024, 11, 29, 17, 55, tzinfo=UTC),  # 12:55 EST on a half day: its close
        datetime(2024, 12, 25, 15, 0, tzinfo=UTC),  # Christmas: no session
        datetime(2025, 7, 25, 20, 45, tzinfo=UTC),  # 16:45 EDT: after hours
        datetime(2025, 7, 25, 12, 0, tzinfo=UTC),  # 08:00 EDT: pre-market
    ]
    built = [SessionCalendar().position(m) for m in moments]
    (cache,) = (tmp_path / "tickwatch").glob("XNYS-*.npz")
    cached = [SessionCalendar().position(m) for m in moments]
    assert built == cached
    assert [p.slot for p in built[:3]] == [0, CLOSE_SLOTS, CLOSE_SLOTS]
    assert built[3].regular is False and built[3].minutes_from_open is None
    assert built[4].slot == POST_SLOTS + 9  # 45 minutes after the close
    assert built[5].slot == PRE_SLOTS + 18  # 90 minutes before the open
    cache.write_bytes(b"not a numpy file")  # a damaged cache is rebuilt, not trusted
    assert [SessionCalendar().position(m) for m in moments] == built
