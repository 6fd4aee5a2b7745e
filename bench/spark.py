"""The Spark contender: the project's Structured Streaming job on the same ticks, and its scale.

Starts a throwaway Kafka broker and PostgreSQL server with the project's scripts, publishes
the ticks to `raw_crypto_ticks`, runs `tickwatch spark --once` (read what the topic holds,
then stop) and reads the anomalies back from PostgreSQL. The job keeps windows open at the
end of a streaming run, so it is compared with the columnar engine without the final flush.

`run` (used by `python -m bench`) times the whole process, JVM and Spark start-up included;
`startup_s` measures that part on an empty topic. `python -m bench.spark` measures the steady
rate instead, on the dense workload, once per Spark master (`local[1]`, `local[2]`, ...): the
job reads in micro-batches of `--max-offsets` records, and the rate is the records of every
batch after the first over the time between the first and the last batch's commit, both read
from the job's checkpoint (the offsets log and the commit files), so start-up and the first
batch's warm-up are left out. Each master gets its own database and checkpoint, and its
anomalies must equal the columnar engine's. The results go to the "Spark" section of
docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import sqlalchemy as sa

from bench.report import machine, write_section
from bench.workload import TickBatch
from tickwatch.engine.windows import micros
from tickwatch.normalize import tick_to_record

ROOT = Path(__file__).resolve().parents[1]
Key = tuple[str, int, str]
log = logging.getLogger("bench.spark")


def _script(*args: str) -> str:
    for attempt in (1, 2):  # a broker start can time out on a loaded machine: one retry
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode == 0:
            lines = done.stdout.strip().splitlines()
            return lines[-1] if lines else ""
        if attempt == 2 or args[1] != "start":
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    raise AssertionError("unreachable")


@contextmanager
def services() -> Iterator[tuple[str, str]]:
    """(Kafka bootstrap, PostgreSQL URL) of throwaway servers, stopped at the end."""
    kafka_dir = Path(tempfile.mkdtemp(prefix="tickwatch-bench-kafka-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="tickwatch-bench-pg-"))
    bootstrap = _script(str(ROOT / "scripts/kafka.sh"), "start", str(kafka_dir))
    try:
        pg_url = _script(str(ROOT / "scripts/postgres.sh"), "start", str(pg_dir))
        try:
            yield bootstrap, pg_url
        finally:
            _script(str(ROOT / "scripts/postgres.sh"), "stop", str(pg_dir))
    finally:
        _script(str(ROOT / "scripts/kafka.sh"), "stop", str(kafka_dir))


def topics(bootstrap: str, prefix: str) -> None:
    from confluent_kafka.admin import AdminClient

    from tickwatch.bus.kafka import TOPICS, ensure_topics

    ensure_topics(AdminClient({"bootstrap.servers": bootstrap}), TOPICS, prefix=prefix)


def publish(bootstrap: str, prefix: str, batch: TickBatch) -> None:
    from confluent_kafka import Producer

    topics(bootstrap, prefix)
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
    for i in range(len(batch)):
        tick = batch.tick(i)
        record = orjson.dumps(tick_to_record(tick))
        while True:
            try:
                producer.produce(prefix + "raw_crypto_ticks", record, tick.symbol)
                break
            except BufferError:  # the local queue is full: let it drain
                producer.poll(0.1)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(300) == 0, "records left undelivered"


def anomalies(url: str) -> set[Key]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("select symbol, window_start, anomaly_type from market_anomalies")
        )
        found = {(s, micros(t), k) for s, t, k in rows}
    engine.dispose()
    return found


def database(url: str, name: str) -> str:
    """A new empty database `name` on the server of `url`; its URL."""
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'drop database if exists "{name}"'))
        conn.execute(sa.text(f'create database "{name}"'))
    engine.dispose()
    return str(sa.make_url(url).set(database=name).render_as_string(hide_password=False))


def job(
    bootstrap: str,
    store: str,
    prefix: str,
    data_dir: Path,
    master: str = "local[*]",
    max_offsets: int | None = None,
) -> float:
    """Seconds of one `tickwatch spark --once` process."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "STORE_URL": store,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "tickwatch.cli", "spark", "--once", "--master", master]
    command += ["--topic-prefix", prefix, "--trigger", "1"]
    if max_offsets is not None:
        command += ["--max-offsets", str(max_offsets)]
    began = time.perf_counter()
    subprocess.run(
        command,
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=3600,
    )
    return time.perf_counter() - began


def steady_rate(checkpoint: Path) -> tuple[float, int, int]:
    """(records per second after the first batch, batches, records) from a checkpoint."""
    batches = sorted(int(p.name) for p in (checkpoint / "commits").iterdir() if p.name.isdigit())
    ends = [_offsets(checkpoint / "offsets" / str(b)) for b in batches]
    if len(batches) < 2:
        raise RuntimeError(
            f"{checkpoint}: {len(batches)} batch, no steady rate; lower --max-offsets"
        )
    seconds = (checkpoint / "commits" / str(batches[-1])).stat().st_mtime - (
        checkpoint / "commits" / str(batches[0])
    ).stat().st_mtime
    return (ends[-1] - ends[0]) / seconds, len(batches), ends[-1]


def _offsets(path: Path) -> int:
    """The sum of the end offsets a batch planned (the last line of its offsets log file)."""
    last = orjson.loads(path.read_text().strip().splitlines()[-1])
    return sum(int(n) for partitions in last.values() for n in partitions.values())


def run(batch: TickBatch) -> tuple[float, float, set[Key]]:
    """(seconds for the ticks, seconds on an empty topic, anomalies); local[*]."""
    with services() as (bootstrap, pg_url), tempfile.TemporaryDirectory() as tmp:
        topics(bootstrap, "empty_")
        startup = job(bootstrap, pg_url, "empty_", Path(tmp) / "empty")
        publish(bootstrap, "bench_", batch)
        elapsed = job(bootstrap, pg_url, "bench_", Path(tmp) / "bench")
        return elapsed, startup, anomalies(pg_url)


def main() -> None:
    from bench import contenders
    from bench.workload import dense, generate

    parser = argparse.ArgumentParser(prog="python -m bench.spark", description=__doc__)
    parser.add_argument("--ticks", type=int, default=600_000)
    parser.add_argument("--max-offsets", type=int, default=100_000)
    parser.add_argument("--masters", default="local[1],local[2]")
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    workload = dense(args.ticks)
    batch = generate(workload)
    _, expected = contenders.columnar(batch, flush=False)
    results: list[tuple[str, float, int, int, bool]] = []
    with services() as (bootstrap, pg_url), tempfile.TemporaryDirectory() as tmp:
        publish(bootstrap, "bench_", batch)
        log.info("published %d ticks (%s)", len(batch), workload.describe())
        for i, master in enumerate(args.masters.split(",")):
            data = Path(tmp) / f"run{i}"
            url = database(pg_url, f"bench{i}")
            elapsed = job(bootstrap, url, "bench_", data, master, args.max_offsets)
            rate, batches, records = steady_rate(data / "checkpoints" / "spark")
            same = anomalies(url) == expected
            log.info(
                "%s: %.0f ticks/s steady, %d batches, %.1f s in all", master, rate, batches, elapsed
            )
            results.append((master, rate, batches, records, same))
    lines = [
        f"`python -m bench.spark --ticks {args.ticks} --max-offsets {args.max_offsets}` "
        f"({workload.describe()}); steady rate = records of batches 2..n over the time between "
        "the first and the last commit, read from the checkpoint.",
        "",
        *(f"- {line}" for line in machine()),
        "",
        "| master | steady ticks/s | per core | batches | anomalies = columnar engine |",
        "| --- | --- | --- | --- | --- |",
    ]
    for master, rate, batches, _, same in results:
        agree = "yes" if same else "**no**"
        per_core = rate / _cores(master)
        lines.append(f"| {master} | {rate:,.0f} | {per_core:,.0f} | {batches} | {agree} |")
    if len(results) >= 2:
        lines += ["", f"{results[-1][0]} / {results[0][0]}: {results[-1][1] / results[0][1]:.2f}x"]
    write_section(args.out, "Spark", lines)


def _cores(master: str) -> int:
    inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
    return (os.cpu_count() or 1) if inside == "*" else int(inside)


if __name__ == "__main__":
    main()
