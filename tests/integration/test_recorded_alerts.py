"""Alerts on real recorded market data (shared/datasets/recorded), through the real pipeline.

- MSFT, 15 sessions of 5-minute bars (2019-03-14 to 2019-04-03, Alpha Vantage, end-labelled):
  ordinary opening and closing auctions raise no alert; the 2019-03-15 quad-witching open
  (10.3M shares, ~40x a median bar) does; at most one market alert per day on average.
- IBM, 2025-07-25 with extended hours: the 16:45 ET print (+11.75 %, reverted next bar) is a
  `data_fault`, never a market alert, and the windows after it are judged exactly as they are
  when that window is left out (the fault does not enter any baseline).
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from tickwatch.alerting import alert_engine, bars_from_windows
from tickwatch.config import load_settings
from tickwatch.processor import Processor
from tickwatch.sources.alphavantage import parse_intraday
from tickwatch.store import SqlStore
from tickwatch.store.alert_rows import alerts
from tickwatch.store.sql import clean_market_data, window_from_row

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "recorded"
NEW_YORK = ZoneInfo("America/New_York")
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def replay(records: list[dict[str, object]], tmp_path: Path) -> SqlStore:
    settings = load_settings(data_dir=tmp_path, max_clock_skew_seconds=10**9)
    store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
    processor = Processor(settings, store, lake=None, clock=lambda: NOW)
    processor.handle(records)  # type: ignore[arg-type]
    processor.finish()
    return store


def alert_rows(store: SqlStore) -> list[dict[str, object]]:
    with store.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(select(alerts))]
    return sorted(rows, key=lambda r: r["opened_at"])  # type: ignore[return-value,arg-type]


def eastern(moment: object) -> str:
    assert isinstance(moment, datetime)
    return moment.astimezone(NEW_YORK).strftime("%Y-%m-%d %H:%M")


@pytest.fixture(scope="module")
def msft(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, object]]:
    body = json.loads(
        (RECORDED / "av_TIME_SERIES_INTRADAY_5min_MSFT_2019-03-14_2019-04-03_full.json").read_text()
    )
    records = [record for _, record in parse_intraday(body, "MSFT", NOW)]
    store = replay(records, tmp_path_factory.mktemp("msft"))
    try:
        return alert_rows(store)
    finally:
        store.close()


def test_end_labelled_bars_start_at_the_open() -> None:
    body = json.loads(
        (RECORDED / "av_TIME_SERIES_INTRADAY_5min_MSFT_2019-03-14_2019-04-03_full.json").read_text()
    )
    starts = [start for start, _ in parse_intraday(body, "MSFT", NOW)]
    # the file's first label is 09:35 and its last 16:00 (end labels): bars span 09:30-16:00
    assert eastern(starts[0]) == "2019-03-14 09:30" and eastern(starts[-1]) == "2019-04-03 15:55"


def test_quad_witching_open_alerts(msft: list[dict[str, object]]) -> None:
    opening = [a for a in msft if eastern(a["opened_at"]) == "2019-03-15 09:30"]
    assert len(opening) == 1
    assert opening[0]["kind"] == "market" and "volume_surge" in str(opening[0]["features"])
    assert "usual volume" in str(opening[0]["summary"])


def test_ordinary_opens_and_closes_raise_no_alert(msft: list[dict[str, object]]) -> None:
    market = [a for a in msft if a["kind"] == "market"]
    at_open = [eastern(a["opened_at"]) for a in market if eastern(a["opened_at"]).endswith("09:30")]
    at_close = [
        eastern(a["opened_at"]) for a in market if eastern(a["opened_at"]).endswith("15:55")
    ]
    assert at_open == ["2019-03-15 09:30"]
    assert at_close == []
    assert len(market) / 15 <= 1.0  # 15 sessions


@pytest.fixture(scope="module")
def ibm_store(tmp_path_factory: pytest.TempPathFactory) -> SqlStore:
    records = []
    path = RECORDED / "av_intraday_5min_IBM_2025-07-25_compact.csv"
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):  # start-labelled, New York time, newest first
            start = datetime.fromisoformat(row["timestamp"]).replace(tzinfo=NEW_YORK)
            bar = {k: float(row[k]) for k in ("open", "high", "low", "close", "volume")}
            records.append({
                "source": "alphavantage", "asset_type": "stock", "symbol": "IBM",
                "event_time": start.astimezone(UTC).isoformat(), "ingest_time": NOW.isoformat(),
                "price": bar["close"], **bar,
            })  # fmt: skip
    records.sort(key=lambda r: str(r["event_time"]))
    return replay(records, tmp_path_factory.mktemp("ibm"))


def test_ibm_bad_print_is_a_data_fault(ibm_store: SqlStore) -> None:
    rows = alert_rows(ibm_store)
    faults = [(eastern(a["opened_at"]), a["features"]) for a in rows if a["kind"] == "data_fault"]
    assert faults == [("2025-07-25 16:45", "bad_print")]
    assert not [a for a in rows if a["kind"] == "market" and "16:4" in eastern(a["opened_at"])]


def test_windows_after_the_bad_print_score_as_without_it(ibm_store: SqlStore) -> None:
    with ibm_store.engine.connect() as conn:
        query = select(clean_market_data).order_by(clean_market_data.c.window_start)
        windows = [window_from_row(r._mapping) for r in conn.execute(query)]
    bad = next(i for i, w in enumerate(windows) if eastern(w.window_start) == "2025-07-25 16:45")
    settings = load_settings()

    def judged(ws: list[object]) -> dict[datetime, tuple[object, ...]]:
        engine = alert_engine(settings)
        out = engine.process(bars_from_windows(ws))  # type: ignore[arg-type]
        out.merge(engine.flush())
        return {v.bar.window_start: (v.z, v.move_pct, v.fault) for v in out.verdicts}

    with_fault = judged(windows)
    without = judged(windows[:bad] + windows[bad + 1 :])
    after = [w.window_start for w in windows[bad + 1 : bad + 21]]
    assert len(after) == 20
    assert [with_fault[t] for t in after] == [without[t] for t in after]
    assert with_fault[windows[bad].window_start][2] == "bad_print"


def test_bitcoin_month_alerts_on_its_two_crashes_and_little_else(tmp_path: Path) -> None:
    """CoinGecko's hourly BTC, 2021-04-15 to 05-15 (recorded): the 2021-04-18 flash crash
    and the 2021-05-12 Tesla sell-off are alerted; the rest of the month is quiet."""
    from tickwatch.sources.coingecko import parse_market_chart

    body = json.loads(
        (
            RECORDED / "coingecko_market_chart_bitcoin_usd_days30_rec2021-05-15T1442Z.json"
        ).read_text()
    )
    records = [r for _, r in parse_market_chart(body, "bitcoin", NOW)]
    store = replay(records, tmp_path)
    try:
        market = [a for a in alert_rows(store) if a["kind"] == "market"]
    finally:
        store.close()
    days = {a["opened_at"].date().isoformat() for a in market}  # type: ignore[union-attr]
    assert "2021-04-18" in days
    assert days & {"2021-05-12", "2021-05-13"}
    assert len(market) <= 4
    crash = next(a for a in market if a["opened_at"].date().isoformat() == "2021-04-18")  # type: ignore[union-attr]
    # about hourly points: the move is measured since the previous point, not over 5 minutes
    span = re.search(r"% in (\d+) min", str(crash["summary"]))
    assert span is not None and 30 <= int(span.group(1)) <= 90, crash["summary"]
