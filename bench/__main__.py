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
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from bench import contenders
from bench.report import Row, machine, table, write, write_section
from bench.workload import Workload, bar_like, dense, generate, slices, write_jsonl

log = logging.getLogger("bench")
TARGETS = {
    "engine": 2_000_000,
    "replay": 400_000,
    "replay_limit": 1.5,
    "replay_rss_mb": 600,
    "latency_ms": 250,
    "rss_mb": 300,
}
REPLAY = "Replay (JSON Lines → SQLite + Parquet)"
STREAMS = "Streaming latency (trade receipt → stored tick)"


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
    parser.add_argument(
        "--before",
        type=Path,
        help="a source tree (its src/ folder) of the code before a change: its replay runs "
        "beside this one, in the same run",
    )
    parser.add_argument(
        "--src",
        type=Path,
        help="run the replay from this source tree (its src/ folder), e.g. a snapshot of a "
        "commit, instead of the installed package",
    )
    parser.add_argument(
        "--only-replay",
        action="store_true",
        help="run only the replay section and rewrite only that section of --out",
    )
    parser.add_argument(
        "--only-streams",
        action="store_true",
        help="run only the streaming latency section and rewrite only that section of --out",
    )
    parser.add_argument("--stream-rate", type=int, default=2000, help="trades/s on loopback")
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    began = time.perf_counter()
    if args.only_streams:
        lines, failed = stream_section(args)
        write_section(args.out, STREAMS, lines)
        log.info("wrote the streams section of %s", args.out)
        if failed:
            raise SystemExit("; ".join(failed))
        return
    if args.only_replay:
        lines, failed = replay_section(args)
        write_section(args.out, REPLAY, lines)
        log.info("wrote the replay section of %s in %.0f s", args.out, time.perf_counter() - began)
        if failed:
            raise SystemExit("correctness check failed: " + "; ".join(failed))
        return

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

    e_rate, l_rate = n / t_engine, n / t_limit
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
    replay_lines, failed = replay_section(args)
    checks += failed
    write(
        args.out,
        workload,
        n,
        args.repeats,
        rows,
        checks,
        machine(),
        time.perf_counter() - began,
        {REPLAY: replay_lines, STREAMS: stream_section(args)[0]},
    )
    log.info("wrote %s in %.0f s", args.out, time.perf_counter() - began)
    if any(c.startswith("FAIL") for c in checks):
        raise SystemExit("correctness check failed: " + "; ".join(checks))


def stream_section(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """p50/p99 from a trade's receipt to its stored tick at `--stream-rate` on loopback
    (bench/stream_latency.py); a missed target is reported, not failed."""
    from bench import stream_latency

    measured_on = machine()  # the load as the run starts
    got = stream_latency.measure(args.stream_rate)
    log.info("streams: %s", got)
    target = got["target_p99_ms"]
    rows = [
        Row("p50", f"{got['p50_ms']:.1f} ms", "", None, ""),
        Row("p99", f"{got['p99_ms']:.1f} ms", f"< {target:g} ms", got["p99_ms"] < target, ""),
        Row("max", f"{got['max_ms']:.1f} ms", "", None, ""),
        Row("ticks stored / trades sent", f"{got['stored']:,} / {got['sent']:,}", "all",
            got["stored"] == got["sent"], ""),
    ]  # fmt: skip
    lines = [
        f"Coinbase `match` messages at {got['rate_per_s']:,} trades/s for "
        f"{got['seconds']:g} s from a websockets server on loopback (its own process), read by the "
        "Coinbase stream source into the embedded Runtime (`bench/stream_latency.py`). Latency "
        "runs from the reader's receipt of a frame to the return of the processor's `handle` "
        "for the batch holding its tick (tick log written, window updated). Measured on:",
        "",
        *measured_on,
        "",
        *table(rows),
    ]
    failed = [] if got["stored"] == got["sent"] else ["streams: ticks lost"]
    return lines, failed


def replay_section(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The replay table for the dense and the bar-like workload: the replay process beside
    the write-inclusive limit (a plain program doing the same writes, `bench/writelimit.py`)
    and the in-memory limit, medians of `--repeats` runs; the failed checks."""
    rows: list[Row] = []
    checks: list[str] = []
    for name, workload in (
        ("dense", dense(args.replay_ticks)),
        ("bar-like", bar_like(args.replay_ticks)),
    ):
        batch = generate(workload)
        n = len(batch)
        log.info("replay, %s: %s, %d ticks", name, workload.describe(), n)
        _, expected = contenders.columnar(batch)
        t_memory = statistics.median(contenders.limit(batch)[0] for _ in range(args.repeats))
        with tempfile.TemporaryDirectory(prefix="tickwatch-bench-") as tmp:
            path = Path(tmp) / "ticks.jsonl"
            write_jsonl(batch, path)
            del batch
            runs = {
                "replay": partial(contenders.replay, path, args.src),
                "limit": partial(contenders.write_limit, path),
            }
            if args.before is not None:
                runs["before"] = partial(contenders.replay, path, args.before)
            usage: dict[str, list[contenders.Usage]] = {k: [] for k in runs}
            for _ in range(args.repeats):  # interleaved, so a busy spell hits every contender
                for key, run in runs.items():
                    used, found = run()
                    usage[key].append(used)
                    checks.append(_check(f"{key}, {name} ({n:,} ticks)", found, expected))
        t = {k: statistics.median(u.wall for u in v) for k, v in usage.items()}
        cpu = {k: statistics.median(u.cpu for u in v) for k, v in usage.items()}
        peak = {k: max(u.rss_mb for u in v) for k, v in usage.items()}
        ratio = t["replay"] / t["limit"]
        log.info(
            "replay, %s: %.0f ticks/s (%.1f s CPU), limit %.0f (%.1f s CPU), ratio %.2f",
            name, n / t["replay"], cpu["replay"], n / t["limit"], cpu["limit"], ratio,
        )  # fmt: skip
        floor = TARGETS["replay"] if name == "dense" else 0
        rows.append(
            Row(
                f"tickwatch replay, {name}",
                f"{n / t['replay']:,.0f} ticks/s",
                f"within {TARGETS['replay_limit']}x of the write-inclusive limit"
                + (f", >= {floor:,} ticks/s" if floor else ""),
                ratio <= TARGETS["replay_limit"] and n / t["replay"] >= floor,
                f"{t['replay']:.1f} s for {n:,} ticks ({cpu['replay']:.1f} s CPU), process "
                f"start included; replay / limit time = {ratio:.2f}x "
                f"(CPU {cpu['replay'] / cpu['limit']:.2f}x)",
            )
        )
        if "before" in t:
            rows.append(
                Row(
                    f"replay before the change, {name}",
                    f"{n / t['before']:,.0f} ticks/s",
                    "-",
                    None,
                    f"{t['before']:.1f} s ({cpu['before']:.1f} s CPU); "
                    f"{t['before'] / t['limit']:.2f}x the limit; peak RSS {peak['before']:.0f} MB",
                )
            )
        rows += [
            Row(
                f"write-inclusive limit, {name}",
                f"{n / t['limit']:,.0f} ticks/s",
                "-",
                None,
                f"{t['limit']:.1f} s ({cpu['limit']:.1f} s CPU); `bench/writelimit.py` in its "
                "own process",
            ),
            Row(
                f"in-memory limit, {name}",
                f"{n / t_memory:,.0f} ticks/s",
                "-",
                None,
                f"{t_memory:.2f} s; `bench/limit.py`, no reading, no writes",
            ),
            Row(
                f"peak RSS of the replay, {name}",
                f"{peak['replay']:.0f} MB",
                f"<= {TARGETS['replay_rss_mb']} MB" if name == "dense" else "-",
                peak["replay"] <= TARGETS["replay_rss_mb"] if name == "dense" else None,
                f"write-inclusive limit: {peak['limit']:.0f} MB",
            ),
        ]
    ok = [c for c in checks if not c.startswith("FAIL")]
    failed = [c for c in checks if c.startswith("FAIL")]
    lines = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; medians of {args.repeats} runs, the "
        "contenders interleaved. Dense: "
        + dense(args.replay_ticks).describe()
        + ". Bar-like: "
        + bar_like(args.replay_ticks).describe()
        + ".",
        "",
        *machine(),
        "",
        *table(rows),
        "",
        f"Correctness: {len(ok)} runs found exactly the columnar engine's anomalies"
        + (f"; FAILED: {'; '.join(failed)}" if failed else "."),
    ]
    return lines, failed


def _check(name: str, found: set[contenders.Key], expected: set[contenders.Key]) -> str:
    if found == expected:
        return f"ok: {name} found the same {len(found):,} anomalies as the columnar engine"
    return (
        f"FAIL: {name}: {len(found - expected)} anomalies the columnar engine lacks, "
        f"{len(expected - found)} missing (of {len(expected):,})"
    )


if __name__ == "__main__":
    main()
