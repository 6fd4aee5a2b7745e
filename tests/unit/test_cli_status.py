"""`tickwatch run`'s status: one line redrawn in place on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io

from rich.console import Console

from tickwatch.cli.render import StatusBoard

LONG = "ticks 1,234 | " + "x" * 200  # wider than the 60-column screens below


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_the_status_is_one_line_redrawn_with_logs_above():
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=60, color_system=None)
    board = StatusBoard(console)
    assert board.tick == 1.0
    with board:
        for n in range(3):
            board.update(f"ticks {n} | " + "x" * 200)
        console.print("a log line")
    out = screen.getvalue()
    assert "a log line" in out
    assert "ticks 2 | " in out  # the latest status was drawn
    assert "x" * 60 not in out  # cut to the screen width, never wrapped into a block
    assert "…" in out
    assert "\x1b[2K" in out  # erased in place (cursor control), not appended


def test_off_a_terminal_a_whole_plain_line_every_interval():
    pipe = io.StringIO()
    console = Console(file=pipe, force_terminal=False, width=60)
    clock = Clock()
    with StatusBoard(console, every=5.0, clock=clock) as board:
        assert board.tick == 5.0
        for second in range(1, 12):  # updated every second: printed at 5 and 10 only
            clock.now = float(second)
            board.update(LONG)
    lines = pipe.getvalue().splitlines()
    assert lines == [LONG, LONG]
