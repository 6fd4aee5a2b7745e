"""`python -m bench.alert_parity --before SRC`: alert scoring speed, and the same output.

Runs the alert engine of this tree and of `SRC` (a source tree's src/ folder, the code
before a change) on the same closed windows: every NAB file, two simulator seeds x 15 days,
the recorded MSFT month and IBM day. Each run records every verdict (z dict, move, volume
ratio, fault, fired, alerting, continuing) and every alert, market event and notice row,
batch by batch; the two records must be equal to the last bit, or the command fails naming
the first difference. It prints the CPU time per window of each tree (the engine only: bars
are built before the clock starts), measured in separate processes, one after the other.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
START = datetime(2024, 3, 4, tzinfo=UTC)
NOW = datetime(2030, 1, 1, tzinfo=UTC)
BATCH = 40  # windows per `process` call, as the processor hands them over
Plain = tuple[Any, ...]  # a bar's fields, in order, readable by either tree


def build() -> dict[str, list[Plain]]:
    """The closed windows of every data set, from this tree's engine."""
    from tickwatch import nab
    from tickwatch.alerting import bars_from_windows
    from tickwatch.config import load_settings
    from tickwatch.engine.alert_score import Bar
    from tickwatch.engine.columnar import make_engine
    from tickwatch.normalize import parse_tick
    from tickwatch.sources.alphavantage import parse_intraday
    from tickwatch.sources.simulate import MarketSimulator

    settings = load_settings()
    config = settings.engine_config()

    def plain(ticks: Iterable[Any]) -> list[Plain]:
        engine = make_engine(config, lambda: NOW)
        windows = [*engine.process(list(ticks)).windows, *engine.flush().windows]
        return [tuple(getattr(b, f.name) for f in fields(Bar)) for b in bars_from_windows(windows)]

    def parsed(records: Iterable[dict[str, Any]]) -> list[Any]:
        return [parse_tick(r, NOW, timedelta(days=36500)) for r in records]  # type: ignore[arg-type]

    sets = {f"nab:{s.name}": plain(parsed(s.records())) for s in nab.load(SHARED / "nab")}
    body = json.loads(
        (
            SHARED
            / "recorded"
            / "av_TIME_SERIES_INTRADAY_5min_MSFT_2019-03-14_2019-04-03_full.json"
        ).read_text()
    )
    records = [r for _, r in parse_intraday(body, "MSFT", NOW)]
    for r in records:  # Alpha Vantage labels a bar by its end
        r["event_time"] = (
            datetime.fromisoformat(str(r["event_time"])) - timedelta(minutes=5)
        ).isoformat()
    sets["msft"] = plain(parsed(records))
    for seed in (1, 2):
        sim = MarketSimulator(settings.stock_symbols, settings.crypto_ids, seed)
        sets[f"sim{seed}"] = plain(
            t for w in sim.windows(START, START + timedelta(days=15)) for t in w
        )
    return sets


def run(sets: dict[str, list[Plain]]) -> tuple[dict[str, list[Any]], float, int]:
    """Every output of the alert engine of the tree on `sys.path`, and its CPU seconds."""
    from tickwatch.engine.alert_score import AlertConfig, Bar
    from tickwatch.engine.episodes import AlertEngine, EpisodeConfig

    records: dict[str, list[Any]] = {}
    cpu, windows = 0.0, 0
    for name, rows in sets.items():
        bars = [Bar(*row) for row in rows]
        engine = AlertEngine(AlertConfig(), EpisodeConfig())
        began = time.process_time()
        outs = [engine.process(bars[i : i + BATCH]) for i in range(0, len(bars), BATCH)]
        outs.append(engine.flush())
        cpu += time.process_time() - began
        windows += len(bars)
        records[name] = [
            (
                [
                    (
                        v.bar.symbol,
                        v.bar.window_start,
                        list(v.z.items()),
                        v.move_pct,
                        v.volume_ratio,
                        v.fault,
                        v.fired,
                        v.alerting,
                        v.continuing,
                        v.regular,
                        v.move_minutes,
                    )
                    for v in out.verdicts
                ],
                [a.row() for a in out.alerts.values()],
                [e.row() for e in out.events.values()],
                [(n.kind, n.alert, n.event, n.text) for n in out.notices],
            )
            for out in outs
        ]
    return records, cpu, windows


def first_difference(before: list[Any], after: list[Any]) -> str | None:
    for batch, (old, new) in enumerate(zip(before, after, strict=True)):
        for part, name in enumerate(("verdict", "alert", "event", "notice")):
            for row, (a, b) in enumerate(zip(old[part], new[part], strict=False)):
                if a != b:
                    return f"batch {batch} {name} {row}:\n  before {a}\n  after  {b}"
            if len(old[part]) != len(new[part]):
                return f"batch {batch}: {len(old[part])} {name}s before, {len(new[part])} after"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.alert_parity", description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="src/ folder of the old code")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # a run of one tree: bars in, outputs and CPU time out
        result = run(pickle.loads(args.child[0].read_bytes()))
        args.child[1].write_bytes(pickle.dumps(result))
        return
    with tempfile.TemporaryDirectory(prefix="tickwatch-parity-") as tmp:
        bars = Path(tmp) / "bars.pkl"
        bars.write_bytes(pickle.dumps(build()))
        results = {}
        for label, src in (("before", args.before), ("after", Path(__file__).parents[1] / "src")):
            out = Path(tmp) / f"{label}.pkl"
            env = {**os.environ, "PYTHONPATH": str(src.resolve())}
            command = [sys.executable, "-m", "bench.alert_parity", "--before", str(args.before)]
            child = [*command, "--child", str(bars), str(out)]
            subprocess.run(child, env=env, check=True, cwd=Path(__file__).parents[1])
            results[label] = pickle.loads(out.read_bytes())
            _, cpu, windows = results[label]
            print(f"{label:6s} {windows} windows, {1e6 * cpu / windows:.1f} us CPU per window")
    before, after = results["before"][0], results["after"][0]
    differences = [(name, first_difference(before[name], after[name])) for name in before]
    bad = [(name, text) for name, text in differences if text]
    for name, text in bad:
        print(f"DIFFERENT {name}: {text}")
    print(f"{len(before) - len(bad)} of {len(before)} data sets identical")
    if bad:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
