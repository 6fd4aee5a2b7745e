"""Hostile frames from a venue: each is counted and kept as a dead letter with its reason (cut
to a bounded size), and the trades around them still arrive."""

from __future__ import annotations

import json

from tests.integration.stream_venue import LoopbackVenue, wait_until
from tests.integration.test_stream_coinbase import (
    ACK,
    FIRST,
    match,
    query,
    serve_trades,
    settings,
)
from tickwatch.runtime import Runtime
from tickwatch.sources.streams import stream_source
from tickwatch.sources.streams.trades import KEPT_CHARS


def bad_match(**changes: object) -> str:
    body = json.loads(match(FIRST + 1))
    body.update(changes)
    return json.dumps(body)


HOSTILE = [
    "x" * 1_000_000,  # a megabyte of garbage
    "[" * 10_000 + "]" * 10_000,  # nesting deeper than any parser should follow
    bad_match(price="NaN"),  # refused at the source, its id not taken: the good copy comes
    bad_match(size="-3"),
    bad_match(trade_id=FIRST + 2, time="9999-12-31T23:59:59Z"),  # refused by validation
    bad_match(trade_id="abc"),
    bad_match(product_id="\u202ebtc"),  # no base-quote market name
    '{"type":"match"}',
    b"\xff\xfe{not utf-8",  # a binary frame that is not UTF-8
]


def test_hostile_frames_are_dead_letters_and_the_stream_goes_on(tmp_path, httpserver):
    serve_trades(httpserver, newest=FIRST + 1)  # the jump to FIRST + 2 backfills FIRST + 1
    with LoopbackVenue([[ACK, match(FIRST), *HOSTILE, match(FIRST + 1)]]) as venue:
        chosen = settings(venue, httpserver, tmp_path)
        runtime = Runtime(chosen, [stream_source(chosen, "coinbase")])
        runtime.start()
        try:
            wait_until(lambda: runtime.counters.accepted == 2, what="the two good trades")
            wait_until(lambda: runtime.counters.rejected == len(HOSTILE), what="dead letters")
        finally:
            runtime.shutdown()
    rows = query(tmp_path, "SELECT reason, payload FROM dead_letters")
    assert len(rows) == len(HOSTILE)
    reasons = " | ".join(r[0] for r in rows)
    for expected in ("unreadable coinbase message", "impossible coinbase trade", "future"):
        assert expected in reasons, reasons
    assert max(len(r[1]) for r in rows) < KEPT_CHARS + 1000  # the megabyte was cut
