"""The feed reader alone against a loopback venue: silence means a dead feed, heartbeats keep
it alive, reconnects back off with jitter and are marked in the inbox, and a reader closed
by a stopping source reads again when the source is restarted."""

from __future__ import annotations

import time

from tests.integration.stream_venue import LoopbackVenue, Pause, wait_until
from tickwatch.sources.streams.client import FeedReader, Frame, Inbox, Reconnected

HEARTBEAT = '{"event":"heartbeat"}'


def reader(url: str, inbox: Inbox, idle: float | None) -> FeedReader:
    return FeedReader(url, lambda: ["subscribe"], inbox, idle_timeout=idle, backoff_base=0.05)


def test_silence_ends_the_connection_and_each_reconnect_is_marked():
    inbox = Inbox(100)
    with LoopbackVenue([["hello"], ["again"], ["third"]]) as venue:
        feed = reader(venue.url, inbox, idle=0.3)
        feed.start()
        try:
            wait_until(lambda: feed.stats.reconnects >= 2, 10, "two reconnects")
        finally:
            feed.close()
    items = inbox.take(100, 0)
    texts = [i.text if isinstance(i, Frame) else "marker" for i in items]
    assert texts[:5] == ["hello", "marker", "again", "marker", "third"]
    marker = next(i for i in items if isinstance(i, Reconnected))
    assert marker.back - marker.lost >= 0.025  # at least the shortest jittered backoff
    assert venue.subscriptions[:3] == [["subscribe"]] * 3  # resubscribed every time
    assert "no message for 0.3s" in feed.stats.last_error


def test_heartbeats_keep_a_quiet_feed_connected():
    inbox = Inbox(100)
    beats = [HEARTBEAT if i % 2 == 0 else Pause(0.1) for i in range(24)]
    with LoopbackVenue([beats]) as venue:
        feed = reader(venue.url, inbox, idle=0.5)
        feed.start()
        try:
            wait_until(lambda: len(inbox) == 12, 10, "12 heartbeats")
            assert feed.stats.reconnects == 0 and feed.stats.connected
        finally:
            feed.close()


def test_backoff_doubles_to_its_cap_with_jitter():
    feed = FeedReader("ws://unused", list, Inbox(1), backoff_base=0.5, backoff_max=30.0)
    for attempt, cap in ((0, 0.5), (1, 1.0), (3, 4.0), (10, 30.0)):
        waits = [feed.backoff(attempt) for _ in range(200)]
        assert all(cap / 2 <= w < cap for w in waits)
        assert max(waits) - min(waits) > cap / 10  # jittered, not one value


def test_a_closed_reader_reads_again_when_started_again():
    inbox = Inbox(100)
    with LoopbackVenue([["one"], ["two"]]) as venue:
        feed = reader(venue.url, inbox, idle=None)
        feed.start()
        wait_until(lambda: len(inbox) == 1, 10, "the first frame")
        feed.close()
        assert not feed.stats.connected
        feed.start()  # a supervisor restarting the source
        try:
            wait_until(lambda: len(inbox) == 2, 10, "the second session's frame")
        finally:
            feed.close()
    assert [f.text for f in inbox.take(10, 0) if isinstance(f, Frame)] == ["one", "two"]


def test_a_full_inbox_refuses_frames_but_never_markers():
    inbox = Inbox(2)
    assert inbox.put(Frame("a", 1.0)) and inbox.put(Frame("b", 2.0))
    assert not inbox.put(Frame("c", 3.0))
    inbox.mark(Reconnected(3.0, 4.0))
    began = time.monotonic()
    assert [type(i).__name__ for i in inbox.take(10, 5.0)] == ["Frame", "Frame", "Reconnected"]
    assert inbox.take(10, 0.05) == [] and time.monotonic() - began < 1.0
