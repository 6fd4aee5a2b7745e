"""Trade receipt to stored tick, through the real embedded pipeline, on loopback.

A websockets server on 127.0.0.1 plays Coinbase `match` messages at a steady rate (in 5 ms
bursts), stamped with the current time; `tickwatch`'s Runtime reads them with the Coinbase
stream source (reader thread, bounded inbox, parse, dedup) and its engine task handles them
(validation, engine, tick log, windows into SQLite). A tick's latency is from the moment the
reader received its frame (the tick's `ingest_time`) to the moment the processor's `handle`
returned for the batch holding it: the tick is then in the tick log and in its window.

`python -m bench.stream_latency [--rate 2000] [--seconds 20]` prints the figures as JSON;
`python -m bench --only-streams` writes them into docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import threading
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
    """Sends `rate` matches a second for `seconds`, on its own thread and event loop."""

    def __init__(self, rate: int, seconds: float) -> None:
        self.rate, self.seconds = rate, seconds
        self.sent = 0
        self.port = 0
        self._ready = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def wait(self, timeout: float) -> None:
        self._done.wait(timeout)

    async def _main(self) -> None:
        async with serve(self._play, "127.0.0.1", 0, ping_interval=None) as server:
            self.port = server.sockets[0].getsockname()[1]
            self._ready.set()
            await asyncio.get_running_loop().run_in_executor(None, self._done.wait)

    async def _play(self, socket: ServerConnection) -> None:
        await socket.recv()  # the subscribe message
        began = time.perf_counter()
        trade_id = 1
        while (elapsed := time.perf_counter() - began) < self.seconds:
            due = int(elapsed * self.rate) - self.sent
            for _ in range(due):
                await socket.send(_match(trade_id))
                trade_id += 1
            self.sent += max(due, 0)
            await asyncio.sleep(BURST)
        self._done.set()
        await socket.wait_closed()


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
