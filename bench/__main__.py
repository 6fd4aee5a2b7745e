"""`python -m bench` (or `make bench`): run every contender, write docs/BENCHMARKS.md.

Throughputs are the median of `--repeats` runs; ratios come from the medians of one run of
this script, so they compare like with like on the same machine at the same moment.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench import contenders
from bench.report import Row, machine, write
from bench.workload import Workload, generate, slices, write_jsonl

log = logging.getLogger("bench")
TARGETS = {"engine": 2_000_000, "replay": 500_000, "latency_ms": 250, "rss_mb": 300}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--symbols", type=int, default=400)
    parser.add_argument("--ticks", type=int, default=2_000_000)
    parser.add_argument("--days", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference-ticks", type=int, default=200_000)
    parser.add_argument("--replay-ticks", type=int, default=2_000_000)
    parser.add_argument("--memory-symbols", type=int, default=10_000)
    parser.add_argument("--spark-ticks", type=int, default=100_000, help="0 skips Spark")
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    began = time.perf_counter()

    workload = Workload(args.symbols, args.ticks, args.days)
    log.info("workload: %s", workload.describe())
    batch = generate(workload)
    n = len(batch)
    rows: list[Row] = []
    checks: list[str] = []

    def median(run: object, *a: object) -> tuple[float, set[contenders.Key]]:
        times, found = [], set()
        for _ in range(args.repeats):
            t, found = run(*a)  # type: ignore[operator]
            times.append(t)
        return statistics.median(times), found

    t_engine, engine_found = median(contenders.columnar, batch)
    log.info("engine: %.0f ticks/s", n / t_engine)
    t_limit, limit_found = median(contenders.limit, batch)
    log.info("limit: %.0f ticks/s", n / t_limit)
    checks.append(_check("vectorised limit", limit_found, engine_found))

    prefix = slices(batch, args.reference_ticks)[0]
    t_ref, ref_found = contenders.reference(prefix)
    _, col_prefix = contenders.columnar(prefix)
    checks.append(_check(f"reference Engine (first {len(prefix):,} ticks)", ref_found, col_prefix))

    replay_batch = slices(batch, args.replay_ticks)[0]
    _, replay_expected = contenders.columnar(replay_batch)
    with tempfile.TemporaryDirectory(prefix="tickwatch-bench-") as tmp:
        path = Path(tmp) / "ticks.jsonl"
        write_jsonl(replay_batch, path)
        t_replay, replay_found = median(contenders.replay, path)
    m = len(replay_batch)
    log.info("replay: %.0f ticks/s", m / t_replay)
    checks.append(_check(f"tickwatch replay ({m:,} ticks)", replay_found, replay_expected))

    spark_row = Row(
        "Spark Structured Streaming, local[*]",
        "skipped (--spark-ticks 0)",
        "engine >= 10x",
        None,
        "",
    )
    if args.spark_ticks:
        from bench import spark

        spark_batch = slices(batch, args.spark_ticks)[0]
        try:
            t_spark, t_start, spark_found = spark.run(spark_batch)
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            log.error("spark contender failed: %s", exc)
            t_spark = 0.0
    if args.spark_ticks and not t_spark:
        spark_row = Row(
            "Spark Structured Streaming, local[*]",
            "failed",
            "engine >= 10x",
            None,
            "the job did not run here; see the runner's log",
        )
    elif args.spark_ticks:
        _, spark_expected = contenders.columnar(spark_batch, flush=False)
        k = len(spark_batch)
        s_rate, s_steady = k / t_spark, k / max(t_spark - t_start, 1e-9)
        log.info("spark: %.0f ticks/s (%.0f without start-up)", s_rate, s_steady)
        checks.append(
            _check(
                f"Spark job ({k:,} ticks, open windows not flushed)", spark_found, spark_expected
            )
        )
        spark_row = Row(
            "Spark Structured Streaming, local[*] (Kafka → PostgreSQL + Parquet)",
            f"{s_rate:,.0f} ticks/s ({s_steady:,.0f} without start-up)",
            "engine >= 10x",
            n / t_engine >= 10 * s_steady,
            f"{t_spark:.1f} s for {k:,} ticks, of which {t_start:.1f} s JVM/Spark start-up "
            f"(empty topic); engine is {(n / t_engine) / s_steady:,.0f}x the steady rate",
        )

    rate = 20_000.0
    lat, lat_n = contenders.latency(batch, rate, 30.0)
    lat_ms = sorted(x * 1000 for x in lat)
    p50 = statistics.median(lat_ms) if lat_ms else float("nan")
    p99 = lat_ms[min(len(lat_ms) - 1, int(0.99 * len(lat_ms)))] if lat_ms else float("nan")
    log.info("latency: p50 %.1f ms p99 %.1f ms over %d anomalies", p50, p99, len(lat_ms))

    windows = 25
    rss = contenders.peak_rss(args.memory_symbols, windows, 5.0, "columnar")
    rss_ref = contenders.peak_rss(args.memory_symbols, windows, 5.0, "reference")
    log.info("peak RSS: columnar %.0f MB, reference %.0f MB", rss, rss_ref)

    e_rate, l_rate, r_rate = n / t_engine, n / t_limit, m / t_replay
    rows += [
        Row(
            "engine (columnar, in memory)",
            f"{e_rate:,.0f} ticks/s",
            f">= {TARGETS['engine']:,} ticks/s",
            e_rate >= TARGETS["engine"],
            f"{t_engine:.2f} s for {n:,} ticks, micro-batches of {contenders.MICRO_BATCH:,}",
        ),
        Row(
            "vectorised limit (numpy, one pass)",
            f"{l_rate:,.0f} ticks/s",
            "engine within 1.5x",
            t_engine <= 1.5 * t_limit,
            f"engine / limit time = {t_engine / t_limit:.2f}x",
        ),
        Row(
            "reference Engine (one Tick at a time)",
            f"{len(prefix) / t_ref:,.0f} ticks/s",
            "-",
            None,
            f"columnar is {(len(prefix) / t_ref) and e_rate / (len(prefix) / t_ref):.0f}x faster",
        ),
        Row(
            "replay end to end (JSON Lines → SQLite + Parquet)",
            f"{r_rate:,.0f} ticks/s",
            f">= {TARGETS['replay']:,} ticks/s",
            r_rate >= TARGETS["replay"],
            f"{t_replay:.1f} s for {m:,} ticks, process start included",
        ),
        spark_row,
        Row(
            f"latency window close → anomaly in store and on bus ({rate:,.0f} ticks/s)",
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            f"p99 <= {TARGETS['latency_ms']} ms",
            p99 <= TARGETS["latency_ms"],
            f"{len(lat_ms)} anomalies of {lat_n} emitted",
        ),
        Row(
            f"peak RSS, {args.memory_symbols:,} symbols x {windows} windows (columnar)",
            f"{rss:.0f} MB",
            f"<= {TARGETS['rss_mb']} MB",
            rss <= TARGETS["rss_mb"],
            f"reference Engine: {rss_ref:.0f} MB",
        ),
    ]
    write(args.out, workload, n, args.repeats, rows, checks, machine(), time.perf_counter() - began)
    log.info("wrote %s in %.0f s", args.out, time.perf_counter() - began)
    if any(c.startswith("FAIL") for c in checks):
        raise SystemExit("correctness check failed: " + "; ".join(checks))


def _check(name: str, found: set[contenders.Key], expected: set[contenders.Key]) -> str:
    if found == expected:
        return f"ok: {name} found the same {len(found):,} anomalies as the columnar engine"
    return (
        f"FAIL: {name}: {len(found - expected)} anomalies the columnar engine lacks, "
        f"{len(expected - found)} missing (of {len(expected):,})"
    )


if __name__ == "__main__":
    main()
