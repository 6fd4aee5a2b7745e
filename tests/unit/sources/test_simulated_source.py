"""The simulator as a live source never emits a tick from the future (issue 15, item 6)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from tickwatch.sources.simulate import MarketSimulator, SimulatedSource

NOW = datetime(2024, 3, 4, 12, 0, tzinfo=UTC)


class FakeTime:
    """Wall and monotonic clocks that advance only when the source waits."""

    def __init__(self) -> None:
        self.now = NOW
        self.waits: list[float] = []

    def monotonic(self) -> float:
        return (self.now - NOW).total_seconds()


class RecordingStop(threading.Event):
    def __init__(self, clock: FakeTime) -> None:
        super().__init__()
        self.clock = clock

    def wait(self, timeout: float | None = None) -> bool:
        assert timeout is not None
        self.clock.waits.append(timeout)
        self.clock.now += timedelta(seconds=timeout)
        return False


def test_history_at_once_then_speed_then_never_past_the_wall_clock() -> None:
    clock = FakeTime()
    sim = MarketSimulator([], ["bitcoin"], seed=1)
    start = NOW - timedelta(minutes=30)  # 30 simulated minutes to catch up at 60x: 30 s
    source = SimulatedSource(
        sim, start, timedelta(hours=1), speed=60.0, monotonic=clock.monotonic,
        wall=lambda: clock.now,
    )  # fmt: skip
    stop = RecordingStop(clock)
    emitted = []
    for batch in source.batches(stop):
        for record in batch:
            moment = datetime.fromisoformat(str(record["event_time"]))  # type: ignore[index]
            assert moment <= clock.now  # never ahead of the wall clock
            emitted.append(moment)
        if clock.now >= NOW + timedelta(minutes=10):
            break
    backfill = [m for m in emitted if m < start]
    assert backfill and min(backfill) >= start - timedelta(hours=1, minutes=5)
    # the catch-up (30 simulated minutes) took 30 wall seconds at 60x; after it, real time:
    # 10 wall minutes after NOW, simulated time is NOW + 10 min, not NOW + 600 min
    assert max(emitted) <= NOW + timedelta(minutes=10, seconds=10)  # one 10 s chunk more
    assert max(emitted) >= NOW + timedelta(minutes=9)
