"""The reader's bounded inbox with a consumer that does not keep up (loopback Coinbase venue)."""

from __future__ import annotations

import json

from tests.integration.stream_venue import LoopbackVenue, Pause, Step, wait_until
from tests.integration.test_stream_coinbase import (
    ACK,
    FIRST,
    collect,
    heartbeat,
    match,
    serve_trades,
    settings,
    trades_of,
)
from tickwatch.normalize import UnreadableRecord
from tickwatch.sources.streams import stream_source


def test_a_full_inbox_drops_counted_as_dead_letters_then_backfilled(tmp_path, httpserver):
    """A consumer that does not read: the reader keeps reading, drops what does not fit (each
    a dead letter with its reason) and the id gap the drops leave is backfilled."""
    serve_trades(httpserver, newest=FIRST + 9)
    session: list[Step] = [ACK, *(match(i) for i in range(FIRST, FIRST + 10)), Pause(1.5)]
    session.append(heartbeat(FIRST + 9))
    with LoopbackVenue([session]) as venue:
        chosen = settings(venue, httpserver, tmp_path, stream_queue_size=4)
        source = stream_source(chosen, "coinbase")
        source.reader.start()  # reading, while nobody takes from the inbox yet
        wait_until(lambda: source.reader.stats.drops == 7, what="7 drops")
        assert source.reader.stats.connected  # the reader was never blocked
        records = collect(source, lambda rs: len(trades_of(rs)) == 10)
    letters = [r for r in records if isinstance(r, UnreadableRecord)]
    assert len(letters) == 7 and {r.reason.split(";")[0] for r in letters} == {
        "stream queue full: message dropped (consumer too slow)"
    }
    assert [json.loads(r["message"])["trade_id"] for r in letters] == list(
        range(FIRST + 3, FIRST + 10)
    )
    assert [r["trade_id"] for r in trades_of(records)] == list(range(FIRST, FIRST + 10))
    assert source.health.figures["drops"] == 7 and source.health.figures["backfilled"] == 7
