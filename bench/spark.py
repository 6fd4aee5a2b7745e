"""The Spark contender: the project's Structured Streaming job in local[*] on the same ticks.

Starts a throwaway Kafka broker and PostgreSQL server with the project's scripts, publishes
the ticks to `raw_crypto_ticks`, runs `tickwatch spark --once` (read what the topic holds,
then stop) and reads the anomalies back from PostgreSQL. The job keeps windows open at the
end of a streaming run, so it is compared with the columnar engine without the final flush.
Time is the whole `tickwatch spark` process: JVM and Spark start-up included, which a
long-running job pays once; `startup_s` measures that part on an empty topic.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import orjson
import sqlalchemy as sa

from bench.workload import TickBatch
from tickwatch.engine.windows import micros
from tickwatch.normalize import tick_to_record

ROOT = Path(__file__).resolve().parents[1]
Key = tuple[str, int, str]


def _script(*args: str) -> str:
    for attempt in (1, 2):  # a broker start can time out on a loaded machine: one retry
        done = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900)
        if done.returncode == 0:
            lines = done.stdout.strip().splitlines()
            return lines[-1] if lines else ""
        if attempt == 2 or args[1] != "start":
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    raise AssertionError("unreachable")


def run(batch: TickBatch) -> tuple[float, float, set[Key]]:
    """(seconds for the ticks, seconds on an empty topic, anomalies)."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient

    from tickwatch.bus.kafka import TOPICS, ensure_topics

    kafka_dir = Path(tempfile.mkdtemp(prefix="tickwatch-bench-kafka-"))
    pg_dir = Path(tempfile.mkdtemp(prefix="tickwatch-bench-pg-"))
    bootstrap = _script(str(ROOT / "scripts/kafka.sh"), "start", str(kafka_dir))
    try:
        pg_url = _script(str(ROOT / "scripts/postgres.sh"), "start", str(pg_dir))
        try:
            ensure_topics(AdminClient({"bootstrap.servers": bootstrap}), TOPICS, prefix="empty_")
            ensure_topics(AdminClient({"bootstrap.servers": bootstrap}), TOPICS, prefix="bench_")
            startup = _job(bootstrap, pg_url, "empty_")
            producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 50})
            for i in range(len(batch)):
                tick = batch.tick(i)
                producer.produce(
                    "bench_raw_crypto_ticks", orjson.dumps(tick_to_record(tick)), tick.symbol
                )
                if i % 10_000 == 0:
                    producer.poll(0)
            producer.flush(120)
            elapsed = _job(bootstrap, pg_url, "bench_")
            engine = sa.create_engine(pg_url)
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text("select symbol, window_start, anomaly_type from market_anomalies")
                )
                found = {(s, micros(t), k) for s, t, k in rows}
            engine.dispose()
        finally:
            _script(str(ROOT / "scripts/postgres.sh"), "stop", str(pg_dir))
    finally:
        _script(str(ROOT / "scripts/kafka.sh"), "stop", str(kafka_dir))
    return elapsed, startup, found


def _job(bootstrap: str, store: str, prefix: str) -> float:
    with tempfile.TemporaryDirectory(prefix="tickwatch-bench-spark-") as tmp:
        env = {**os.environ, "DATA_DIR": tmp, "LOG_LEVEL": "WARNING"}
        began = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "tickwatch.cli",
                "spark",
                "--once",
                "--kafka",
                bootstrap,
                "--store",
                store,
                "--topic-prefix",
                prefix,
                "--trigger",
                "1",
            ],
            check=True,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=1800,
        )
        return time.perf_counter() - began


if __name__ == "__main__":  # a quick look: python -m bench.spark N
    from bench.workload import Workload, generate, slices

    part = slices(generate(Workload(100, 200_000, 1)), int(sys.argv[1]))[0]
    t, s, f = run(part)
    print(f"{len(part)} ticks: {t:.1f} s, start-up {s:.1f} s, {len(f)} anomalies", datetime.now())
