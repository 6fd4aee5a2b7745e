"""Checkpoint pruning: stale folders go, recent and live ones stay, whatever their age."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tickwatch.config import Settings
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.ops.probe import checkpoint_offsets

NOW = datetime(2024, 3, 6, 16, 0, tzinfo=UTC)


def make_checkpoint(root: Path, name: str, age: timedelta, size: int = 100) -> Path:
    folder = root / name
    (folder / "offsets").mkdir(parents=True)
    (folder / "offsets" / "0").write_bytes(b"x" * size)
    stamp = (NOW - age).timestamp()
    for path in (folder / "offsets" / "0", folder / "offsets", folder):
        os.utime(path, (stamp, stamp))
    return folder


def test_prunes_only_stale_and_never_live(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    root = tmp_path / "checkpoints"
    make_checkpoint(root, "old-query", timedelta(hours=30), size=1000)
    make_checkpoint(root, "recent", timedelta(hours=23))
    live = make_checkpoint(root, "stream", timedelta(days=3))  # a quiet live job
    ctx = OpsContext(settings, now=NOW, live_checkpoints=(live,))
    result = run_check("checkpoints", ctx)
    assert result.verdict is Verdict.OK
    assert result.figures["removed"] == ["old-query"]
    assert result.figures["kept"] == ["recent", "stream"]
    assert result.figures["freed_bytes"] == 1000
    assert sorted(p.name for p in root.iterdir()) == ["recent", "stream"]


def test_no_checkpoint_folder_is_fine(tmp_path: Path):
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    result = run_check("checkpoints", OpsContext(settings, now=NOW))
    assert result.verdict is Verdict.OK
    assert result.figures["removed"] == []


def test_reads_kafka_positions_from_the_newest_spark_batch(tmp_path: Path):
    offsets = tmp_path / "offsets"
    offsets.mkdir()
    meta = '{"batchWatermarkMs":0,"batchTimestampMs":1709740800000,"conf":{}}'
    (offsets / "0").write_text(f'v1\n{meta}\n{{"raw_stock_ticks":{{"0":5,"1":7}}}}\n')
    (offsets / "1").write_text(
        f'v1\n{meta}\n{{"raw_stock_ticks":{{"0":9,"1":7}},"raw_crypto_ticks":{{"0":3}}}}\n'
    )
    (offsets / ".1.crc").write_text("junk")
    assert checkpoint_offsets(tmp_path) == {
        "raw_stock_ticks": {0: 9, 1: 7},
        "raw_crypto_ticks": {0: 3},
    }
    assert checkpoint_offsets(tmp_path / "missing") == {}
