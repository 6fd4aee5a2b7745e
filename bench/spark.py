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
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import sqlalchemy as sa

from bench.report import machine, write_section
from bench.workload import TickBatch
from tickwatch.clock import micros
from tickwatch.records import tick_to_record

ROOT = Path(__file__).resolve().parents[1]
Key = tuple[str, int, str]
log = logging.getLogger("bench.spark")
TARGET_RATE = 50_000  # ticks/s steady on local[2] (issue 17)


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def standalone(folder: Path, workers: int = 2, cores: int = 1) -> Iterator[str]:
    """A Spark standalone cluster on loopback, from pyspark's own jars and launch classes
    (org.apache.spark.deploy.master.Master and worker.Worker): a master and `workers` workers
    of `cores` cores; yields its URL once every worker has registered."""
    import pyspark

    home = Path(pyspark.__file__).parent
    java = ["java", "-Xmx512m", "-cp", f"{home / 'jars'}/*"]
    # the launcher finds the Scala version from a source build's folders unless told; pyspark's
    # jars are Scala 2.13
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_SCALA_VERSION": "2.13"}
    port, ui = _free_port(), _free_port()
    url = f"spark://127.0.0.1:{port}"
    folder.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []

    def launch(name: str, *args: str) -> None:
        with (folder / f"{name}.log").open("wb") as out:
            processes.append(
                subprocess.Popen([*java, *args], env=env, stdout=out, stderr=subprocess.STDOUT)
            )

    try:
        launch(
            "master",
            *("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1"),
            *("--port", str(port), "--webui-port", str(ui)),
        )
        for i in range(workers):
            launch(
                f"worker{i}",
                *("org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1"),
                *("--cores", str(cores), "--memory", "1g", "--webui-port", str(_free_port())),
                *("--work-dir", str(folder / f"work{i}"), url),
            )
        deadline = time.monotonic() + 120
        while _alive_workers(ui) < workers:
            if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                raise RuntimeError(f"the standalone cluster did not start; see {folder}")
            time.sleep(1)
        yield url
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=30)


def _alive_workers(ui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=5) as answer:
            return int(orjson.loads(answer.read()).get("aliveworkers", 0))
    except OSError:
        return 0


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
    src: Path | None = None,
) -> float:
    """Seconds of one `tickwatch spark --once` process; `src` runs the package (driver and
    Python workers) from another source tree, the code before a change."""
    env = {
        **os.environ,
        "DATA_DIR": str(data_dir),
        "STORE_URL": store,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "LOG_LEVEL": "WARNING",
    }
    if src is not None:
        env["PYTHONPATH"] = str(src)
    command = [sys.executable, "-m", "tickwatch.cli", "spark", "--once", "--master", master]
    command += ["--topic-prefix", prefix, "--trigger", "1"]
    if max_offsets is not None:
        command += ["--max-offsets", str(max_offsets)]
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = data_dir / "job.log"
    began = time.perf_counter()
    with log_file.open("wb") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=3600)
    if done.returncode != 0:
        kept = Path(tempfile.gettempdir()) / "tickwatch-bench-spark-failed.log"
        shutil.copyfile(log_file, kept)
        raise RuntimeError(f"{' '.join(command)} failed; its log: {kept}")
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
    parser.add_argument(
        "--cluster", action="store_true", help="also on a standalone master + 2 workers x 1 core"
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="a source tree (its src/ folder) of the code before a change: each master also "
        "runs it, interleaved with the current code",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per master (and code)")
    parser.add_argument("--out", type=Path, default=Path("docs/BENCHMARKS.md"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    load_before = os.getloadavg()
    workload = dense(args.ticks)
    batch = generate(workload)
    _, expected = contenders.columnar(batch, flush=False)
    results: dict[str, list[tuple[float, int, bool]]] = {}
    with services() as (bootstrap, pg_url), tempfile.TemporaryDirectory() as tmp:
        publish(bootstrap, "bench_", batch)
        log.info("published %d ticks (%s)", len(batch), workload.describe())

        runs = iter(range(1_000_000))

        def measure(master: str, label: str, src: Path | None = None) -> None:
            i = next(runs)
            data = Path(tmp) / f"run{i}"
            url = database(pg_url, f"bench{i}")
            elapsed = job(bootstrap, url, "bench_", data, master, args.max_offsets, src)
            rate, batches, _ = steady_rate(data / "checkpoints" / "spark")
            same = anomalies(url) == expected
            log.info("%s: %.0f ticks/s steady, %d batches, %.0f s", label, rate, batches, elapsed)
            results.setdefault(label, []).append((rate, batches, same))
            database(pg_url, f"bench{i}")  # emptied: the server keeps only the running one
            shutil.rmtree(data, ignore_errors=True)

        masters = [m for m in args.masters.split(",") if m]
        for _ in range(args.repeat):
            for master in masters:
                if args.before is not None:
                    measure(master, f"{master}, before", args.before)
                measure(master, master)
        if args.cluster:
            with standalone(Path(tmp) / "cluster") as url:
                measure(url, "standalone, 2 workers x 1 core")
    lines = [
        f"`python -m bench.spark --ticks {args.ticks} --max-offsets {args.max_offsets}` "
        f"({workload.describe()}); steady rate = records of batches 2..n over the time between "
        "the first and the last commit, read from the checkpoint"
        + (f"; median of {args.repeat} runs, interleaved" if args.repeat > 1 else "")
        + (
            f"; 'before' = the code of {args.before} in the same run"
            if args.before is not None
            else ""
        )
        + ".",
        "",
        *(line for line in machine() if not line.startswith(("- load", "- OPENBLAS"))),
        "- load average (1, 5, 15 min) at the start: {:.2f}, {:.2f}, {:.2f}; at the end: "
        "{:.2f}, {:.2f}, {:.2f} (other processes share the 2 cores)".format(
            *load_before, *os.getloadavg()
        ),
        "",
        "| master | steady ticks/s (median) | per core | each run | batches "
        "| anomalies = columnar engine |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    rates = {label: statistics.median(r[0] for r in runs) for label, runs in results.items()}
    for label, runs_of in results.items():
        agree = "yes" if all(same for _, _, same in runs_of) else "**no**"
        per_core = rates[label] / (2 if label.startswith("standalone") else _cores(label))
        every = ", ".join(f"{rate:,.0f}" for rate, _, _ in runs_of)
        lines.append(
            f"| {label} | {rates[label]:,.0f} | {per_core:,.0f} | {every} "
            f"| {runs_of[0][1]} | {agree} |"
        )
    base = "local[1]" if "local[1]" in rates else next(iter(rates))
    lines += [""] + [
        f"- {label} / {base}: {rate / rates[base]:.2f}x"
        for label, rate in rates.items()
        if label != base
    ]
    if "local[1]" in rates and "local[2]" in rates:
        met = rates["local[2]"] >= TARGET_RATE and rates["local[2]"] >= 1.6 * rates["local[1]"]
        lines.append(
            f"- targets (issue 17): local[2] >= {TARGET_RATE:,} ticks/s and >= 1.6x local[1]: "
            + ("met" if met else "**not met** in this run")
        )
    write_section(args.out, "Spark", lines)


def _cores(label: str) -> int:
    master = label.split(",")[0]
    inside = master[master.find("[") + 1 : master.find("]")] if "[" in master else "1"
    return (os.cpu_count() or 1) if inside == "*" else int(inside)


if __name__ == "__main__":
    main()
