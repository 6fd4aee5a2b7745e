"""The check registry: names and groups, verdict order, failures that stay contained."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from tickwatch.config import Settings
from tickwatch.errors import CheckFailed, ConfigError
from tickwatch.ops.airflow_tasks import summary_task
from tickwatch.ops.checks import (
    REGISTRY,
    CheckResult,
    OpsContext,
    Verdict,
    check,
    expand,
    require,
    run_check,
    worst,
)

PIPELINE = [
    "kafka", "store", "topics", "producer-stock", "producer-crypto", "stream-job", "freshness",
    "consumer-lag", "stream-feeds", "row-counts", "symbols",
]  # fmt: skip
QUALITY = ["nulls", "duplicates", "price-sanity", "anomaly-stats", "rows-per-window", "parquet"]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]


def test_groups_expand_in_order_without_acting_checks():
    assert expand(["pipeline"]) == PIPELINE
    assert expand(["quality"]) == QUALITY
    assert expand(["all"]) == PIPELINE + QUALITY
    assert expand(["freshness", "pipeline"])[0] == "freshness"  # each once, first mention wins
    assert expand(["checkpoints"]) == ["checkpoints"]  # acting checks run when named


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"no check or group named 'fresh'.*freshness"):
        expand(["fresh"])


def test_worst_verdict():
    def result(v: Verdict) -> CheckResult:
        return CheckResult("x", v, "")

    assert worst([]) is Verdict.OK
    assert worst([result(Verdict.OK), result(Verdict.WARN)]) is Verdict.WARN
    assert worst([result(Verdict.FAIL), result(Verdict.WARN)]) is Verdict.FAIL


def test_require_raises_only_on_failure():
    warned = CheckResult("lag", Verdict.WARN, "behind", {"lag": 5})
    assert require(warned) is warned
    with pytest.raises(CheckFailed, match="freshness: stale") as caught:
        require(CheckResult("freshness", Verdict.FAIL, "stale"))
    assert caught.value.result["verdict"] == "fail"


def test_a_crashing_check_is_a_failed_check(settings: Settings):
    @check("test-crash", "test", "always raises")
    def crash(ctx: OpsContext) -> tuple[Verdict, str, dict[str, object]]:
        raise RuntimeError("boom")

    try:
        result = run_check("test-crash", OpsContext(settings))
    finally:
        del REGISTRY["test-crash"]
    assert result.verdict is Verdict.FAIL
    assert result.message == "check raised RuntimeError: boom"


def test_now_must_be_aware(settings: Settings):
    with pytest.raises(ConfigError, match="naive"):
        OpsContext(settings, now=datetime(2024, 3, 6, 16))
    assert OpsContext(settings, now=datetime(2024, 3, 6, 16, tzinfo=UTC)).now.tzinfo is UTC


def test_context_from_settings_follows_the_bus(settings: Settings):
    assert OpsContext.from_settings(settings).kafka_bootstrap is None
    kafka = settings.model_copy(update={"bus": "kafka", "kafka_bootstrap_servers": "k:9092"})
    ctx = OpsContext.from_settings(kafka, topic_prefix="t.")
    # with BUS=kafka the stream job is Spark: no consumer group reads the raw topics, its
    # checkpoint (the one `tickwatch spark` writes by default) holds the position
    assert (ctx.kafka_bootstrap, ctx.consumer_group, ctx.topic_prefix) == ("k:9092", None, "t.")
    assert ctx.live_checkpoints == (settings.data_dir / "checkpoints" / "spark",)


def test_summary_names_failures_and_restarts():
    xcoms = {
        "check_a": {"verdict": "ok"},
        "check_b": None,  # the task failed: no XCom
        "check_c": {"verdict": "warn"},
        "restart_b": {"service": "b", "restarted": True},
        "restart_c": None,  # skipped
    }
    checks = {"check_a": "a", "check_b": "b", "check_c": "c"}
    restarts = {"restart_b": "b", "restart_c": "c"}
    with pytest.raises(CheckFailed, match="pipeline unhealthy: b failed; restarted b"):
        summary_task(checks, restarts, xcoms.get)
    xcoms["check_b"] = {"verdict": "ok"}
    xcoms["restart_b"] = None
    body = summary_task(checks, restarts, xcoms.get)
    assert body == {"verdicts": {"a": "ok", "b": "ok", "c": "warn"}, "failed": [], "restarted": []}
