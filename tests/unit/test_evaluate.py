"""Evaluation: label files, metrics worked by hand, and a replay through the real pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tickwatch.cli import app
from tickwatch.config import load_settings
from tickwatch.errors import SourceError
from tickwatch.evaluate import LabelRange, evaluate, read_labels, score_alerts
from tickwatch.model import Anomaly, AnomalyType, AssetType, Severity, Tick
from tickwatch.records import tick_to_record
from tickwatch.sources.simulate import Label, MarketSimulator

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
FIVE = timedelta(minutes=5)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_reads_the_simulator_label_file(tmp_path: Path) -> None:
    sim = MarketSimulator(["AAPL"], [])
    sim.labels = [Label("AAPL", at(0), at(5), AnomalyType.VOLUME_SURGE)]
    sim.write_labels(tmp_path / "labels.csv")
    assert read_labels(tmp_path / "labels.csv") == [
        LabelRange("AAPL", at(0), at(5), AnomalyType.VOLUME_SURGE)
    ]


def test_reads_outside_labels_without_type(tmp_path: Path) -> None:
    path = tmp_path / "outside.csv"
    path.write_text(
        "symbol,start,end\n"
        "MSFT,2024-03-04T10:00:00Z,2024-03-04T10:30:00Z\n"
        "IBM,2024-03-04T06:00:00-05:00,2024-03-04T06:05:00-05:00\n"
    )
    assert read_labels(path) == [
        LabelRange("MSFT", at(0), at(30)),
        LabelRange(
            "IBM", datetime(2024, 3, 4, 11, 0, tzinfo=UTC), datetime(2024, 3, 4, 11, 5, tzinfo=UTC)
        ),
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("sym,start,end\n", "missing symbol"),
        (
            "symbol,start,end\nA,2024-03-04T10:00:00,2024-03-04T10:05:00Z\n",
            ":2: start has no UTC offset",
        ),
        ("symbol,start,end\nA,2024-03-04T10:05:00Z,2024-03-04T10:00:00Z\n", "not after start"),
        (
            "symbol,start,end,type\nA,2024-03-04T10:00Z,2024-03-04T10:05Z,spike\n",
            "unknown type 'spike'",
        ),
        ("symbol,start,end\n,2024-03-04T10:00Z,2024-03-04T10:05Z\n", "empty symbol"),
    ],
)
def test_bad_label_files_say_where_and_why(tmp_path: Path, body: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(SourceError, match=message):
        read_labels(path)


def alert(symbol: str, minutes: int, kind: AnomalyType) -> Anomaly:
    return Anomaly(
        symbol,
        AssetType.STOCK,
        at(minutes),
        at(minutes + 5),
        kind,
        1.0,
        0.0,
        1.0,
        3.5,
        Severity.LOW,
        T0,
    )


def test_metrics_by_hand() -> None:
    ps, vs, vb = AnomalyType.PRICE_SPIKE, AnomalyType.VOLUME_SURGE, AnomalyType.VOLATILITY_BURST
    labels = [
        LabelRange("A", at(0), at(5), ps),
        LabelRange("A", at(60), at(65), vs),
        LabelRange("B", at(120), at(150)),  # untyped: any type may hit it
    ]
    alerts = [
        alert("A", 0, ps),  # hit
        alert("A", 0, vb),  # inside the price label: fine overall, cross for volatility
        alert("A", 90, vs),  # false alarm
        alert("B", 130, vs),  # hit, 2 windows after the label starts
        alert("B", 135, vs),  # the same label again
        alert("B", 180, ps),  # false alarm
    ]
    rows = {m.name: m for m in score_alerts(alerts, labels, FIVE)}

    price = rows["price_spike"]  # labels A-price and B; alerts A@0 (hit), B@180 (miss)
    assert (price.labels, price.detected, price.alerts, price.true_alerts) == (2, 1, 2, 1)
    assert (price.precision, price.recall, price.f1, price.mean_delay) == (0.5, 0.5, 0.5, 0.0)

    volume = rows["volume_surge"]  # labels A-volume and B; alerts A@90, B@130, B@135
    assert (volume.precision, volume.recall) == (2 / 3, 1 / 2)
    assert volume.f1 == pytest.approx(4 / 7)
    assert volume.mean_delay == 2.0

    burst = rows["volatility_burst"]  # label B only; its one alert sits in A's price label
    assert (burst.labels, burst.alerts, burst.cross, burst.f1, burst.mean_delay) == (
        1,
        1,
        1,
        0.0,
        None,
    )

    overall = rows["overall"]  # 4 of 6 alerts inside a label; 2 of 3 labels found
    assert (overall.precision, overall.recall) == (4 / 6, 2 / 3)
    assert overall.f1 == pytest.approx(2 / 3)
    assert overall.mean_delay == 1.0  # (0 + 2) / 2


def calm_market(surge_at: int, windows: int = 30) -> list[dict[str, object]]:
    """One crypto symbol, two ticks a window, a 5-window cycle; 10x volume at `surge_at`."""
    records = []
    for i in range(windows):
        step = (0.1, -0.1, 0.2, -0.2, 0.15)[i % 5]
        volume = 1000.0 + (10, -10, 20, -20, 0)[i % 5]
        if i == surge_at:
            volume *= 10
        start = at(5 * i)
        for offset, price in ((0, 100.0), (60, 100.0 + step)):
            moment = start + timedelta(seconds=offset)
            tick = Tick("test", AssetType.CRYPTO, "X", moment, moment, price, volume / 2)
            records.append(tick_to_record(tick))
    return records


def test_replay_through_the_pipeline() -> None:
    records: list[object] = [*calm_market(surge_at=25), b"not json"]
    labels = [
        LabelRange("X", at(125), at(130), AnomalyType.VOLUME_SURGE),  # injected: found
        LabelRange("X", at(135), at(140), AnomalyType.VOLATILITY_BURST),  # not injected: missed
    ]
    result = evaluate([records], labels, load_settings())  # type: ignore[list-item]
    assert (result.detector, result.windows, result.rejected) == ("zscore", 30, 1)
    rows = {m.name: m for m in result.metrics}
    assert (rows["volume_surge"].alerts, rows["volume_surge"].recall) == (1, 1.0)
    assert (rows["volatility_burst"].alerts, rows["volatility_burst"].recall) == (0, 0.0)
    assert (rows["overall"].precision, rows["overall"].recall) == (1.0, 0.5)


def test_cli_prints_json(tmp_path: Path) -> None:
    ticks, labels = tmp_path / "ticks.jsonl", tmp_path / "labels.csv"
    ticks.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in calm_market(surge_at=25)))
    labels.write_text("symbol,start,end\nX,2024-03-04T12:05:00Z,2024-03-04T12:10:00Z\n")
    result = CliRunner().invoke(
        app, ["evaluate", str(ticks), "--labels", str(labels), "--detector", "robust", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.stdout)
    assert report["detector"] == "robust"
    assert report["metrics"]["overall"]["recall"] == 1.0
