"""The streaming trade feeds as `tickwatch check` sees them: from their status files.

Only the feeds CRYPTO_SOURCE and STOCK_SOURCE choose are judged. A feed fails when it is
disconnected or silent for longer than STALE_SECONDS although it runs (venues heartbeat every
second or so); it warns when it is not running (its file is older than that) or when it
dropped messages or left a gap unfilled (each of those is also a dead letter), or when one
chosen feed has run here and another never has. When none has ever run here, the store is fed
by the simulator or a replay (an offline `make run`): nothing to judge.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tickwatch.ops.checks import OpsContext, Outcome, check, fail, ok, warn
from tickwatch.sources.streams.status import read_status, status_path

STALE_SECONDS = 60.0
SHOWN = ("connected", "last_message_age_s", "reconnects", "gaps", "backfilled", "unfilled", "drops")


@check("stream-feeds", "pipeline", "streaming trade feeds: connected, recent messages, gaps, drops")
def stream_feeds(ctx: OpsContext) -> Outcome:
    settings = ctx.settings
    venues = [v for v in (*settings.crypto_venues, settings.stock_source) if v not in _POLLED]
    if not venues:
        return ok("no streaming feed chosen (CRYPTO_SOURCE and STOCK_SOURCE poll)")
    figures: dict[str, Any] = {}
    failing: list[str] = []
    warning: list[str] = []
    for venue in venues:
        status = read_status(status_path(settings.data_dir, venue))
        if status is None:
            warning.append(f"{venue} has never run here (no status in {settings.data_dir})")
            continue
        figures[venue] = {name: status.get(name) for name in SHOWN}
        written = (ctx.now - datetime.fromisoformat(status["written_at"])).total_seconds()
        silent = status.get("last_message_age_s")
        if written > STALE_SECONDS:
            warning.append(f"{venue} is not running (status {written:.0f}s old)")
        elif not status.get("connected"):
            failing.append(f"{venue} is disconnected ({status.get('state')}); see its log")
        elif silent is not None and silent > STALE_SECONDS:
            failing.append(f"{venue} sent nothing for {silent:.0f}s; see its log")
        elif status.get("unfilled") or status.get("drops"):
            warning.append(
                f"{venue} lost data: {status.get('unfilled')} trades not backfilled, "
                f"{status.get('drops')} messages dropped (dead letters say which)"
            )
    if not figures:  # no chosen feed ever ran here: the simulator or a replay fills this store
        return ok(f"no trade stream has run here ({', '.join(venues)} chosen, none started)")
    if failing:
        return fail("; ".join(failing + warning), **figures)
    if warning:
        return warn("; ".join(warning), **figures)
    return ok(f"{', '.join(venues)} streaming", **figures)


_POLLED = ("coingecko", "alphavantage")
