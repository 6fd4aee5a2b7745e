"""The `stream-feeds` check judges the status files the streaming sources write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tickwatch.config import Settings
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.sources.streams.status import status_path, write_status

HEALTHY = {"connected": True, "last_message_age_s": 0.4, "reconnects": 2, "gaps": 1,
           "backfilled": 30, "unfilled": 0, "drops": 0}  # fmt: skip


def verdict(tmp_path, seconds_later: float = 0.0, **chosen: str):
    settings = Settings(_env_file=None, data_dir=tmp_path, **chosen)  # type: ignore[call-arg]
    now = datetime.now(UTC) + timedelta(seconds=seconds_later)
    return run_check("stream-feeds", OpsContext(settings, now=now))


def test_polled_sources_have_nothing_to_judge(tmp_path):
    assert verdict(tmp_path).verdict is Verdict.OK


@pytest.mark.parametrize(
    ("figures", "later", "expected", "says"),
    [
        (HEALTHY, 0, Verdict.OK, "coinbase streaming"),
        ({**HEALTHY, "connected": False}, 0, Verdict.FAIL, "disconnected"),
        ({**HEALTHY, "last_message_age_s": 75.0}, 0, Verdict.FAIL, "sent nothing for 75s"),
        (HEALTHY, 300, Verdict.WARN, "not running"),
        ({**HEALTHY, "unfilled": 12}, 0, Verdict.WARN, "12 trades not backfilled"),
        ({**HEALTHY, "drops": 3}, 0, Verdict.WARN, "3 messages dropped"),
    ],
)
def test_a_feed_is_judged_by_its_status(tmp_path, figures, later, expected, says):
    write_status(status_path(tmp_path, "coinbase"), "ok", figures)
    result = verdict(tmp_path, later, crypto_source="coinbase")
    assert result.verdict is expected and says in result.message, result.message
    assert result.figures["coinbase"]["reconnects"] == 2


def test_a_chosen_feed_that_never_ran_beside_one_that_did_warns(tmp_path):
    write_status(status_path(tmp_path, "coinbase"), "ok", HEALTHY)
    result = verdict(tmp_path, crypto_source="coinbase,kraken")
    assert result.verdict is Verdict.WARN and "kraken has never run" in result.message


def test_no_chosen_feed_ever_ran_here_is_nothing_to_judge(tmp_path):
    """An offline `make run` (the simulator) with the default CRYPTO_SOURCE=coinbase."""
    result = verdict(tmp_path, crypto_source="kraken")
    assert result.verdict is Verdict.OK and "none started" in result.message
