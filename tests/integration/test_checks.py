"""Every check against real stores and a real broker, in a good and a broken state.

"now" is injected: 2024-03-06 (a Wednesday) 16:00 UTC is 11:00 in New York (EST), market open;
2024-03-09 16:00 UTC is a Saturday. Seeded windows are hand-made, so every expected count and
verdict below is worked out from the seed, not read from the code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from typer.testing import CliRunner

from tests.services import Postgres
from tickwatch.cli import app
from tickwatch.config import Settings
from tickwatch.model import (
    CLEAN_MARKET_DATA,
    MARKET_ANOMALIES,
    RAW_CRYPTO_TICKS,
    RAW_STOCK_TICKS,
    Anomaly,
    AnomalyType,
    AssetType,
    Severity,
    Window,
)
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.store import ParquetLake, SqlStore

OPEN = datetime(2024, 3, 6, 16, 0, tzinfo=UTC)
SATURDAY = datetime(2024, 3, 9, 16, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)
LATENESS = timedelta(minutes=10)


def window(symbol: str, start: datetime, close: float = 101.0, **changes: object) -> Window:
    asset = AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK
    values: dict[str, object] = {
        "symbol": symbol,
        "asset_type": asset,
        "window_start": start,
        "window_end": start + FIVE,
        "open": 100.0,
        "high": max(102.0, close),
        "low": min(99.0, close),
        "close": close,
        "volume": 10.0,
        "tick_count": 4,
        "vwap": 100.5,
        "price_return_pct": (close - 100.0) / 100.0 * 100,
        "volatility": 1.0,
    }
    values.update(changes)
    return Window(**values)  # type: ignore[arg-type]


def anomaly(
    symbol: str, start: datetime, kind: AnomalyType, severity: Severity, z: float
) -> Anomaly:
    asset = AssetType.CRYPTO if symbol == "bitcoin" else AssetType.STOCK
    return Anomaly(
        symbol, asset, start, start + FIVE, kind, 5.0, 1.0, 1.0, z, severity, start + FIVE
    )


def seed(store: SqlStore, now: datetime, hours: int = 2) -> list[Window]:
    """Windows of AAPL and bitcoin every 5 minutes for `hours`, the newest closing exactly at
    the watermark (now - 10 min), so the pipeline is as fresh as it can be."""
    newest_start = now - LATENESS - FIVE
    windows = [
        window(symbol, newest_start - FIVE * i)
        for i in range(hours * 12)
        for symbol in ("AAPL", "bitcoin")
    ]
    store.write(windows, [])
    return windows


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        stock_symbols=["AAPL"],
        crypto_ids=["bitcoin"],
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[SqlStore]:
    s = SqlStore(settings.database_url)
    yield s
    s.close()


def verdict(name: str, ctx: OpsContext) -> tuple[Verdict, str, dict[str, object]]:
    result = run_check(name, ctx)
    return result.verdict, result.message, result.figures


# --- store, freshness, counts ---------------------------------------------------------------


def test_fresh_pipeline_is_green(settings: Settings, store: SqlStore):
    seed(store, OPEN)
    ctx = OpsContext(settings, now=OPEN)
    for name in ("store", "freshness", "producer-stock", "producer-crypto", "stream-job"):
        assert verdict(name, ctx)[0] is Verdict.OK, name
    _, _, figures = verdict("freshness", ctx)
    assert figures["stock_staleness_min"] == 0.0
    assert figures["crypto_staleness_min"] == 0.0


def test_stale_data_fails_while_the_market_is_open(settings: Settings, store: SqlStore):
    seed(store, OPEN)
    # 16 minutes later nothing new closed: staleness 16 min > 15
    later = OPEN + timedelta(minutes=16)
    result, message, _ = verdict("freshness", OpsContext(settings, now=later))
    assert result is Verdict.FAIL
    assert "no new stock window for 16.0 min" in message
    assert "no new crypto window for 16.0 min" in message
    assert verdict("producer-crypto", OpsContext(settings, now=later))[0] is Verdict.FAIL
    # 15 minutes later is still within the limit
    assert (
        verdict("freshness", OpsContext(settings, now=OPEN + timedelta(minutes=15)))[0]
        is Verdict.OK
    )


def test_closed_stock_market_is_not_a_failure(settings: Settings, store: SqlStore):
    seed(store, SATURDAY - timedelta(hours=30))  # stock and crypto stale since Friday
    store.write([window("bitcoin", SATURDAY - LATENESS - FIVE)], [])  # crypto fresh
    result, message, figures = verdict("freshness", OpsContext(settings, now=SATURDAY))
    assert result is Verdict.OK
    assert "stock market closed" in message
    assert figures["stock_market_open"] is False
    assert verdict("producer-stock", OpsContext(settings, now=SATURDAY))[0] is Verdict.OK


def test_empty_store_has_no_fresh_data(settings: Settings, store: SqlStore):
    result, message, _ = verdict("freshness", OpsContext(settings, now=OPEN))
    assert result is Verdict.FAIL
    assert "no new stock window for ever" in message


def test_row_counts_and_symbol_summary(settings: Settings, store: SqlStore):
    seed(store, OPEN)  # 24 windows per symbol
    start = OPEN - LATENESS - FIVE
    store.write(
        [],
        [
            anomaly("AAPL", start, AnomalyType.PRICE_SPIKE, Severity.HIGH, 6.0),
            anomaly("AAPL", start - FIVE, AnomalyType.VOLUME_SURGE, Severity.LOW, 3.5),
        ],
    )
    ctx = OpsContext(settings, now=OPEN)
    result, _message, figures = verdict("row-counts", ctx)
    assert result is Verdict.OK
    assert figures["clean_rows"] == 48
    assert figures["anomalies"] == 2
    result, _, figures = verdict("symbols", ctx)
    summary = figures["symbols"]
    assert isinstance(summary, dict)
    assert summary["AAPL"]["windows"] == 24
    assert summary["AAPL"]["anomalies_24h"] == 2
    assert summary["bitcoin"]["anomalies_24h"] == 0
    assert summary["AAPL"]["close"] == 101.0


@pytest.mark.postgres
def test_symbol_summary_on_postgresql(settings: Settings, postgres_db: str):
    on_postgres = settings.model_copy(update={"store_url": postgres_db})
    store = SqlStore(postgres_db)
    # 360 windows per symbol ending at now - 10 min - 5i min (i = 0..359); within 24 h:
    # 10 + 5i < 1440, so i = 0..285, 286 windows
    seed(store, OPEN, hours=30)
    store.close()
    result, _, figures = verdict("symbols", OpsContext(on_postgres, now=OPEN))
    summary = figures["symbols"]
    assert isinstance(summary, dict)
    assert result is Verdict.OK, summary
    assert summary["AAPL"]["windows"] == 360
    assert summary["AAPL"]["windows_24h"] == 286


def test_symbol_never_seen_is_a_warning(settings: Settings, store: SqlStore):
    seed(store, OPEN)
    wider = settings.model_copy(update={"stock_symbols": ["AAPL", "MSFT"]})
    result, message, _ = verdict("symbols", OpsContext(wider, now=OPEN))
    assert result is Verdict.WARN
    assert "MSFT" in message


# --- quality --------------------------------------------------------------------------------


def _table_without_key(settings: Settings) -> sa.Engine:
    """clean_market_data as another writer might create it: same columns, no primary key."""
    from tickwatch.store.sql import clean_market_data

    engine = sa.create_engine(settings.database_url)
    columns = [sa.Column(c.name, c.type) for c in clean_market_data.columns]
    sa.Table(CLEAN_MARKET_DATA, sa.MetaData(), *columns).create(engine)
    return engine


def test_duplicates_inserted_fail(settings: Settings):
    settings.data_dir.mkdir(parents=True)
    engine = _table_without_key(settings)
    store = SqlStore(settings.database_url)  # creates the other tables, keeps this one
    row = window("AAPL", OPEN - timedelta(minutes=30)).as_row()
    from tickwatch.store.sql import clean_market_data

    with engine.begin() as conn:
        conn.execute(clean_market_data.insert(), [row, row, row])  # 1 group, 2 extra rows
        conn.execute(clean_market_data.insert(), [window("bitcoin", OPEN - FIVE * 6).as_row()])
    result, message, figures = verdict("duplicates", OpsContext(settings, now=OPEN))
    assert result is Verdict.FAIL
    assert figures["store_duplicate_groups"] == 1
    assert figures["store_extra_rows"] == 2
    assert "AAPL" in message
    store.close()


def test_nulls_in_critical_columns_fail(settings: Settings):
    settings.data_dir.mkdir(parents=True)
    engine = _table_without_key(settings)
    SqlStore(settings.database_url).close()
    from tickwatch.store.sql import clean_market_data

    row = window("AAPL", OPEN - timedelta(minutes=30)).as_row()
    with engine.begin() as conn:
        conn.execute(clean_market_data.insert(), [{**row, "close": None}])
        conn.execute(clean_market_data.insert(), [{**row, "symbol": "MSFT", "volume": None}])
    result, message, figures = verdict("nulls", OpsContext(settings, now=OPEN))
    assert result is Verdict.FAIL
    assert figures["nulls"] == {"clean_market_data.close": 1}  # null volume is legitimate
    assert "clean_market_data.close 1" in message


def test_clean_store_passes_quality(settings: Settings, store: SqlStore):
    seed(store, OPEN)
    ctx = OpsContext(settings, now=OPEN)
    for name in ("nulls", "duplicates", "price-sanity", "rows-per-window", "anomaly-stats"):
        assert verdict(name, ctx)[0] is Verdict.OK, name


def test_price_sanity(settings: Settings, store: SqlStore):
    start = OPEN - timedelta(minutes=30)
    store.write(
        [
            window("AAPL", start),  # sane
            window("AAPL", start - FIVE, close=180.0),  # +80 %: implausible
        ],
        [],
    )
    result, message, figures = verdict("price-sanity", OpsContext(settings, now=OPEN))
    assert result is Verdict.WARN
    assert figures["absurd_returns"] == 1
    assert "+80.0%" in message
    store.write(
        [
            window("bitcoin", start, low=-1.0),
            window("bitcoin", start - FIVE, close=103.0, high=102.5),
        ],
        [],
    )
    result, message, figures = verdict("price-sanity", OpsContext(settings, now=OPEN))
    assert result is Verdict.FAIL
    assert figures["non_positive"] == 1
    assert figures["inconsistent_ohlc"] == 1  # close 103 above high 102.5


def test_anomaly_stats_by_type_and_severity(settings: Settings, store: SqlStore):
    seed(store, OPEN)  # 48 windows: 144 scored features
    start = OPEN - LATENESS - FIVE
    store.write(
        [],
        [
            anomaly("AAPL", start, AnomalyType.PRICE_SPIKE, Severity.HIGH, 6.0),
            anomaly("AAPL", start, AnomalyType.VOLUME_SURGE, Severity.LOW, -3.5),
            anomaly("bitcoin", start, AnomalyType.PRICE_SPIKE, Severity.MEDIUM, 4.5),
        ],
    )
    result, _message, figures = verdict("anomaly-stats", OpsContext(settings, now=OPEN))
    assert result is Verdict.OK
    assert figures["by_type"] == {"price_spike": 2, "volume_surge": 1}
    assert figures["by_severity"] == {"high": 1, "low": 1, "medium": 1}
    assert figures["mean_abs_z"] == pytest.approx((6.0 + 3.5 + 4.5) / 3, abs=1e-3)
    assert figures["rate"] == pytest.approx(3 / 144, abs=1e-5)


def test_rows_per_window_names_the_missing_symbol(settings: Settings, store: SqlStore):
    newest = OPEN - LATENESS - FIVE
    # last hour: windows starting 15:00 .. 15:45; bitcoin misses 15:40
    starts = [newest - FIVE * i for i in range(10)]
    store.write([window("AAPL", s) for s in starts], [])
    store.write([window("bitcoin", s) for s in starts if s != newest - FIVE], [])
    result, message, figures = verdict("rows-per-window", OpsContext(settings, now=OPEN))
    assert result is Verdict.WARN
    assert "bitcoin" in message
    gaps = figures["gaps"]
    assert isinstance(gaps, dict) and len(gaps) == 1


def test_parquet_output_and_lake_duplicates(settings: Settings):
    ctx = OpsContext(settings, now=OPEN)
    assert verdict("parquet", ctx)[0] is Verdict.WARN  # nothing written yet
    lake = ParquetLake(settings.data_dir / "lake")
    rows = [
        window("AAPL", OPEN - timedelta(minutes=30)),
        window("bitcoin", OPEN - timedelta(minutes=30)),
    ]
    lake.write_windows(rows)
    lake.flush()
    result, _, figures = verdict("parquet", ctx)
    assert result is Verdict.OK
    tables = figures["tables"]
    assert isinstance(tables, dict)
    assert tables[CLEAN_MARKET_DATA]["files"] == 1
    files = list((settings.data_dir / "lake").rglob("*.parquet"))
    assert tables[CLEAN_MARKET_DATA]["bytes"] == sum(f.stat().st_size for f in files)
    SqlStore(settings.database_url).close()
    assert verdict("duplicates", ctx)[0] is Verdict.OK
    lake.write_windows(rows[:1])  # a replay writes AAPL again
    lake.flush()
    result, _, figures = verdict("duplicates", ctx)
    assert result is Verdict.WARN
    assert figures["lake_extra_rows"] == 1


def test_quality_report_aggregates_and_saves(settings: Settings, store: SqlStore):
    seed(store, OPEN)
    result = run_check("quality-report", OpsContext(settings, now=OPEN))
    assert result.verdict is Verdict.WARN  # the lake is empty: parquet warns
    report = orjson.loads(Path(str(result.figures["report"])).read_bytes())
    assert report["verdict"] == "warn"
    names = {c["name"] for c in report["checks"]}
    assert {"nulls", "duplicates", "price-sanity", "parquet"} <= names
    assert "checkpoints" not in names


# --- CLI ------------------------------------------------------------------------------------


def test_cli_json_and_exit_code(
    settings: Settings, store: SqlStore, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(settings.data_dir.parent)
    runner = CliRunner()
    # empty store: freshness fails, so the command fails
    done = runner.invoke(
        app, ["check", "store", "freshness", "--json", "--data-dir", str(settings.data_dir)]
    )
    assert done.exit_code == 1, done.output
    body = orjson.loads(done.stdout)
    assert body["verdict"] == "fail"
    assert [c["name"] for c in body["checks"]] == ["store", "freshness"]
    done = runner.invoke(app, ["check", "store", "--data-dir", str(settings.data_dir)])
    assert done.exit_code == 0
    assert "store" in done.stdout and "ok" in done.stdout
    done = runner.invoke(app, ["check", "nonsense"])
    assert done.exit_code == 2


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_up_then_stopped(tmp_path: Path):
    server = Postgres()
    url = server.start()
    try:
        pg = Settings(data_dir=tmp_path, store_url=url, _env_file=None)  # type: ignore[call-arg]
        store = SqlStore(url)
        seed(store, OPEN)
        store.close()
        ctx = OpsContext(pg, now=OPEN)
        assert verdict("store", ctx)[0] is Verdict.OK
        assert verdict("freshness", ctx)[0] is Verdict.OK
        assert verdict("duplicates", ctx)[0] is Verdict.OK
        ctx.close()
    finally:
        server.stop()
    ctx = OpsContext(pg, now=OPEN)
    result, message, _ = verdict("store", ctx)
    assert result is Verdict.FAIL
    assert "postgresql" in message and "refuses connections" in message
    assert "password" not in message.lower() or "***" in message
    result, message, _ = verdict("freshness", ctx)
    assert result is Verdict.FAIL and "store query failed" in message


# --- Kafka ----------------------------------------------------------------------------------


def eventually(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Topic creation is asynchronous in Kafka: wait for the metadata to show it."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)
    return True


def _produce(bootstrap: str, topic: str, n: int) -> None:
    producer = Producer({"bootstrap.servers": bootstrap})
    for i in range(n):
        producer.produce(topic, key=b"bitcoin", value=orjson.dumps({"i": i}))
    assert producer.flush(30) == 0


@pytest.fixture
def kafka_ctx(kafka_bootstrap: str, settings: Settings) -> Iterator[OpsContext]:
    prefix = f"chk{uuid.uuid4().hex[:6]}."
    yield OpsContext(settings, kafka_bootstrap=kafka_bootstrap, topic_prefix=prefix)


@pytest.mark.kafka
def test_kafka_topics_missing_then_created(kafka_ctx: OpsContext):
    assert kafka_ctx.kafka_bootstrap is not None
    assert verdict("kafka", kafka_ctx)[0] is Verdict.OK
    result, message, figures = verdict("topics", kafka_ctx)
    assert result is Verdict.FAIL
    assert len(figures["missing"]) == 4  # type: ignore[arg-type]
    prefix = kafka_ctx.topic_prefix
    admin = AdminClient({"bootstrap.servers": kafka_ctx.kafka_bootstrap})
    names = [prefix + t for t in (RAW_STOCK_TICKS, RAW_CRYPTO_TICKS, CLEAN_MARKET_DATA)]
    for future in admin.create_topics([NewTopic(n, 2, 1) for n in names]).values():
        future.result()
    assert eventually(lambda: len(verdict("topics", kafka_ctx)[2]["missing"]) == 1)  # type: ignore[arg-type]
    result, message, figures = verdict("topics", kafka_ctx)
    assert result is Verdict.FAIL
    assert figures["missing"] == [prefix + MARKET_ANOMALIES]
    assert prefix + MARKET_ANOMALIES in message
    for future in admin.create_topics([NewTopic(prefix + MARKET_ANOMALIES, 1, 1)]).values():
        future.result()
    assert eventually(lambda: verdict("topics", kafka_ctx)[0] is Verdict.OK)


@pytest.mark.kafka
def test_producer_freshness_and_consumer_lag(kafka_ctx: OpsContext):
    assert kafka_ctx.kafka_bootstrap is not None
    bootstrap, prefix = kafka_ctx.kafka_bootstrap, kafka_ctx.topic_prefix
    topic = prefix + RAW_CRYPTO_TICKS
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 2, 1)]).values():
        future.result()
    now = datetime.now(UTC)
    ctx = OpsContext(kafka_ctx.settings, now=now, kafka_bootstrap=bootstrap, topic_prefix=prefix)
    result, message, _ = verdict("producer-crypto", ctx)
    assert result is Verdict.FAIL and "never" in message  # empty topic
    _produce(bootstrap, topic, 10)
    now = datetime.now(UTC)
    ctx.now = now
    result, _, figures = verdict("producer-crypto", ctx)
    assert result is Verdict.OK
    ctx.now = now + timedelta(minutes=20)  # nothing published for 20 minutes
    result, message, _ = verdict("producer-crypto", ctx)
    assert result is Verdict.FAIL
    assert "published nothing" in message and prefix + RAW_CRYPTO_TICKS in message
    # a group that consumed and committed 4 of the 10 messages trails by 6
    group = f"g{uuid.uuid4().hex[:6]}"
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    taken = []
    deadline = time.monotonic() + 30
    while len(taken) < 4 and time.monotonic() < deadline:
        message_ = consumer.poll(0.5)
        if message_ is not None and message_.error() is None:
            taken.append(message_)
    consumer.commit(
        offsets=[TopicPartition(m.topic(), m.partition(), m.offset() + 1) for m in taken[:4]],
        asynchronous=False,
    )
    consumer.close()
    ctx.consumer_group = group
    result, message, figures = verdict("consumer-lag", ctx)
    assert result is Verdict.OK
    assert figures["lag"] == {f"group {group}": {topic: 6}}
    assert f"{topic} 6" in message


def test_kafka_down_fails_with_the_fix(settings: Settings):
    ctx = OpsContext(settings, kafka_bootstrap="127.0.0.1:9")  # nothing listens on port 9
    for name in ("kafka", "producer-crypto"):
        result, message, _ = verdict(name, ctx)
        assert result is Verdict.FAIL, name
        assert "does not answer" in message and "127.0.0.1:9" in message


def test_web_health_checks_endpoint(settings: Settings, store: SqlStore):
    from fastapi.testclient import TestClient

    from tickwatch.web.app import create_app

    seed(store, OPEN)
    with TestClient(
        create_app(settings, clock=lambda: OPEN), base_url="http://127.0.0.1"
    ) as client:
        body = client.get("/health/checks").json()
        assert body["verdict"] == "ok"
        assert [c["name"] for c in body["checks"]][:2] == ["kafka", "store"]
    later = OPEN + timedelta(minutes=20)
    with TestClient(
        create_app(settings, clock=lambda: later), base_url="http://127.0.0.1"
    ) as client:
        response = client.get("/health/checks", params={"name": ["freshness"]})
        assert response.status_code == 503
        assert response.json()["checks"][0]["verdict"] == "fail"
        assert client.get("/health/checks", params={"name": ["nope"]}).status_code == 400


# --- issue 18: checks that see the real stack ----------------------------------------------


def test_windows_stamped_ahead_of_the_clock_are_never_negatively_stale(
    settings: Settings, store: SqlStore
):
    # a source stamped 40 min ahead of the clock: the newest window ends at now + 30 min, so
    # now - L - end is -40 min; the age reported is 0 (as fresh as can be), never negative
    store.write([window(s, OPEN + timedelta(minutes=25)) for s in ("AAPL", "bitcoin")], [])
    result, _, figures = verdict("freshness", OpsContext(settings, now=OPEN))
    assert result is Verdict.OK
    assert figures["stock_staleness_min"] == 0.0
    assert figures["crypto_staleness_min"] == 0.0


def _spark_offsets(checkpoint: Path, batch: int, positions: dict[str, dict[str, int]]) -> None:
    """An offsets file in the layout Spark writes: version, metadata, one line per source."""
    folder = checkpoint / "offsets"
    folder.mkdir(parents=True, exist_ok=True)
    metadata = {"batchWatermarkMs": 0, "batchTimestampMs": 0, "conf": {}}
    lines = ["v1", orjson.dumps(metadata).decode(), orjson.dumps(positions).decode()]
    (folder / str(batch)).write_text("\n".join(lines))


@pytest.mark.kafka
def test_bus_kafka_lag_comes_from_the_spark_checkpoint(kafka_ctx: OpsContext):
    """With BUS=kafka the checks measure Spark's position (its checkpoint), not the group
    `tickwatch`, which consumes nothing in that mode and would report the whole topic."""
    assert kafka_ctx.kafka_bootstrap is not None
    bootstrap, prefix = kafka_ctx.kafka_bootstrap, kafka_ctx.topic_prefix
    topic = prefix + RAW_CRYPTO_TICKS
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result()
    _produce(bootstrap, topic, 10)
    settings = kafka_ctx.settings.model_copy(
        update={"bus": "kafka", "kafka_bootstrap_servers": bootstrap}
    )
    # Spark planned batch 3 up to offset 9 of partition 0: one message still to read
    _spark_offsets(settings.data_dir / "checkpoints" / "spark", 3, {topic: {"0": 9}})
    ctx = OpsContext.from_settings(settings, topic_prefix=prefix)
    result, message, figures = verdict("consumer-lag", ctx)
    assert result is Verdict.OK
    assert figures["lag"] == {"checkpoint spark": {topic: 1}}
    assert "group" not in message


@pytest.mark.kafka
def test_check_with_kafka_but_nothing_to_measure_says_so(
    kafka_bootstrap: str, settings: Settings, store: SqlStore
):
    """`tickwatch check consumer-lag --kafka HOST:PORT` without BUS=kafka and with no Spark
    checkpoint used to print "lag within 1,000 messages ()": it measured nothing."""
    prefix, bootstrap = f"chk{uuid.uuid4().hex[:6]}.", kafka_bootstrap
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(prefix + RAW_STOCK_TICKS, 1, 1)]).values():
        future.result()
    _produce(bootstrap, prefix + RAW_STOCK_TICKS, 3)
    done = CliRunner().invoke(
        app,
        [
            *("check", "consumer-lag", "--json", "--kafka", bootstrap),
            *("--topic-prefix", prefix, "--data-dir", str(settings.data_dir)),
        ],
        env={"BUS": "memory"},
    )
    assert done.exit_code == 0, done.output
    body = orjson.loads(done.stdout)
    lag = body["checks"][0]
    assert lag["verdict"] == "warn"  # like stream-job with no heartbeat: never ran here
    assert "no consumer position" in lag["message"]
    assert str(settings.data_dir / "checkpoints" / "spark") in lag["message"]
