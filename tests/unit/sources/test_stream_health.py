"""What the `tickwatch run` status line says of a trade stream."""

from __future__ import annotations

from types import SimpleNamespace

from tickwatch.cli.render import source_health
from tickwatch.sources import SourceHealth


def line(**figures: object) -> str:
    health = SourceHealth(state="ok", figures=dict(figures))
    return source_health(SimpleNamespace(name="coinbase", health=health))  # type: ignore[arg-type]


def test_a_stream_shows_its_troubles_and_only_those():
    calm = line(reconnects=0, unfilled=0, drops=0, gaps=3, connected=True)
    assert calm == "coinbase [green]ok[/]"
    assert (
        line(reconnects=2, unfilled=0, drops=7) == "coinbase [green]ok[/] (2 reconnects, 7 drops)"
    )
