"""Trade receipt to stored tick, through the real embedded pipeline, on loopback.

A websockets server on 127.0.0.1, in a process of its own, plays Coinbase `match` messages at
a steady rate (in 5 ms bursts), stamped with the current time; tickwatch's Runtime reads them
with the Coinbase stream source (reader thread, bounded inbox, parse, dedup) and its engine
task handles them (validation, engine, tick log, windows into SQLite). A tick's latency is
from the moment the reader received its frame (the tick's `ingest_time`) to the moment the
processor's `handle` returned for the batch holding it: the tick is then in the tick log and
in its window.

`python -m bench.stream_latency [--rate 2000] [--seconds 20]` prints the figures as JSON;
`python -m bench --only-streams` writes them into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from tickwatch.config import Settings
from tickwatch.runtime import Runtime
from tickwatch.sources.streams import stream_source

TARGET_P99_MS = 50.0
BURST = 0.005  # seconds between bursts


class PacedVenue:
    """Sends `rate` matches a second for `seconds` from a process of its own, as a venue
    would: it shares neither the interpreter lock nor the event loop with the pipeline."""

    def __init__(self, rate: int, seconds: float) -> None:
        context = multiprocessing.get_context("spawn")
        self._port = context.Value("i", 0)
        self._sent = context.Value("q", 0)
        self._done = context.Event()
        self._ready = context.Event()
        self._process = context.Process(
            target=_venue_main,
            args=(rate, seconds, self._port, self._sent, self._ready, self._done),
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._port.value)

    @property
    def sent(self) -> int:
        return int(self._sent.value)

    def start(self) -> None:
        self._process.start()
        self._ready.wait(30)

    def wait(self, timeout: float) -> None:
        self._done.wait(timeout)

    def stop(self) -> None:
        self._process.terminate()
        self._process.join(5)


def _venue_main(rate: int, seconds: float, port: Any, sent: Any, ready: Any, done: Any) -> None:
    async def play(socket: ServerConnection) -> None:
        await socket.recv()  # the subscribe message
        began = time.perf_counter()
        trade_id = 1
        while (elapsed := time.perf_counter() - began) < seconds:
            for _ in range(int(elapsed * rate) - sent.value):
                await socket.send(_match(trade_id))
                trade_id += 1
                sent.value += 1
            await asyncio.sleep(BURST)
        done.set()
        await socket.wait_closed()

    async def main() -> None:
        async with serve(play, "127.0.0.1", 0, ping_interval=None) as server:
            port.value = server.sockets[0].getsockname()[1]
            ready.set()
            await asyncio.get_running_loop().run_in_executor(None, done.wait)
            await asyncio.sleep(3600)  # until terminated

    asyncio.run(main())


def _match(trade_id: int) -> str:
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    price = 60000 + (trade_id % 100) * 0.5
    return json.dumps(
        {"type": "match", "trade_id": trade_id, "side": "buy", "size": "0.01",
         "price": f"{price:.2f}", "product_id": "BTC-USD", "sequence": trade_id, "time": now}
    )  # fmt: skip


def measure(rate: int = 2000, seconds: float = 20.0) -> dict[str, Any]:
    venue = PacedVenue(rate, seconds)
    venue.start()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            data_dir=Path(folder),
            crypto_ids=["bitcoin"],
            stock_symbols=[],
            crypto_source="coinbase",
            coinbase_ws_url=f"ws://127.0.0.1:{venue.port}",
            coinbase_rest_url="http://127.0.0.1:9",  # no gaps here: never called
        )
        runtime = Runtime(settings, [stream_source(settings, "coinbase")])
        latencies: list[float] = []
        handle = runtime.processor.handle

        def timed(records: list[Any]) -> Any:
            out = handle(records)
            done = time.time()
            for record in records:
                if isinstance(record, dict) and "ingest_time" in record:
                    received = record["ingest_time"].timestamp()
                    latencies.append(done - received)
            return out

        runtime.processor.handle = timed  # type: ignore[method-assign]
        runtime.start()
        try:
            venue.wait(seconds + 30)
            deadline = time.monotonic() + 10
            while len(latencies) < venue.sent and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            runtime.shutdown()
            venue.stop()
    ms = sorted(x * 1000 for x in latencies)
    quantiles = statistics.quantiles(ms, n=100) if len(ms) > 1 else [0.0] * 99
    return {
        "rate_per_s": rate,
        "seconds": seconds,
        "sent": venue.sent,
        "stored": len(ms),
        "p50_ms": round(quantiles[49], 2),
        "p99_ms": round(quantiles[98], 2),
        "max_ms": round(ms[-1], 2) if ms else None,
        "target_p99_ms": TARGET_P99_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stream_latency", description=__doc__)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(json.dumps(measure(args.rate, args.seconds), indent=2))


if __name__ == "__main__":
    main()
