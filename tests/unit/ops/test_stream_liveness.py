"""The distributed stream-job check judges the Spark job by its heartbeat, and the checks look
where the job writes.

Hand-worked limits: a 10 s trigger gives 2 x 10 + 1 (slack) = 21 s; a heartbeat 25 s old is a
dead job, one 15 s old a live one, whatever the checkpoint files' ages say.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tickwatch.config import Settings
from tickwatch.ops.checks import OpsContext, Verdict, run_check
from tickwatch.spark.progress import read_heartbeat, write_heartbeat

NOW = datetime(2024, 3, 6, 16, 0, tzinfo=UTC)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", _env_file=None)  # type: ignore[call-arg]


def _distributed(settings: Settings, now: datetime) -> OpsContext:
    # nothing listens on port 9: the stream-job check must not need the broker
    return OpsContext.from_settings(settings, now=now, kafka_bootstrap="127.0.0.1:9")


def test_the_checks_look_where_the_spark_job_writes(settings: Settings) -> None:
    pytest.importorskip("pyspark")
    from tickwatch.spark.job import JobConfig

    kafka = settings.model_copy(update={"bus": "kafka"})
    for s in (settings, kafka):
        assert OpsContext.from_settings(s).live_checkpoints == (
            JobConfig.from_settings(s).checkpoint,
        )


def test_a_stale_heartbeat_fails_even_with_fresh_checkpoint_files(settings: Settings) -> None:
    checkpoint = settings.data_dir / "checkpoints" / "spark"
    write_heartbeat(checkpoint, 10.0, 41, NOW - timedelta(seconds=25))
    (checkpoint / "offsets").mkdir()
    (checkpoint / "offsets" / "41").write_text("v1\n{}\n")  # written just now
    result = run_check("stream-job", _distributed(settings, NOW))
    assert result.verdict is Verdict.FAIL
    assert "heartbeat is 25 s old (limit 21 s" in result.message
    assert result.figures["heartbeat_limit_s"] == 21.0
    assert result.figures["batch_id"] == 41


def test_a_fresh_heartbeat_is_a_live_job(settings: Settings) -> None:
    checkpoint = settings.data_dir / "checkpoints" / "spark"
    write_heartbeat(checkpoint, 10.0, None, NOW - timedelta(seconds=15))
    result = run_check("stream-job", _distributed(settings, NOW))
    assert result.verdict is Verdict.OK
    assert result.figures["heartbeat_age_s"] == 15.0
    # a reader whose clock trails the writer's sees age 0, not a negative one
    early = run_check("stream-job", _distributed(settings, NOW - timedelta(seconds=20)))
    assert early.verdict is Verdict.OK and early.figures["heartbeat_age_s"] == 0.0


def test_no_heartbeat_warns_and_names_the_checkpoint(settings: Settings) -> None:
    result = run_check("stream-job", _distributed(settings, NOW))
    assert result.verdict is Verdict.WARN
    assert str(settings.data_dir / "checkpoints" / "spark") in result.message


def test_heartbeat_round_trip(tmp_path: Path) -> None:
    write_heartbeat(tmp_path, 0.5, 7, NOW)
    beat = read_heartbeat(tmp_path)
    assert beat is not None
    assert (beat.at, beat.trigger_seconds, beat.batch_id) == (NOW, 0.5, 7)
    assert beat.limit == timedelta(seconds=2.0)
    assert read_heartbeat(tmp_path / "missing") is None


def test_lag_position_is_the_newest_committed_batch(tmp_path: Path) -> None:
    """Batch 4 was planned (offsets/4) but the job died before committing it: Spark will re-run
    it, so the processed position is batch 3's, 9 and not 12."""
    from tickwatch.ops.probe import checkpoint_offsets

    meta = '{"batchWatermarkMs":0,"batchTimestampMs":0,"conf":{}}'
    (tmp_path / "offsets").mkdir()
    (tmp_path / "commits").mkdir()
    for batch, offset in ((3, 9), (4, 12)):
        (tmp_path / "offsets" / str(batch)).write_text(f'v1\n{meta}\n{{"t":{{"0":{offset}}}}}\n')
    (tmp_path / "commits" / "3").write_text('v1\n{"nextBatchWatermarkMs":0}\n')
    assert checkpoint_offsets(tmp_path) == {"t": {0: 9}}
    (tmp_path / "commits" / "4").write_text('v1\n{"nextBatchWatermarkMs":0}\n')
    assert checkpoint_offsets(tmp_path) == {"t": {0: 12}}
