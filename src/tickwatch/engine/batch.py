"""TickBatch: validated ticks as columns (numpy arrays), the input of the columnar engine.

One row per tick, in arrival order. Text columns are dictionary-encoded (`symbol_code` indexes
`symbols`, `source_code` indexes `sources`) so the engine touches Python strings once per
distinct name, not once per tick. Times are integer microseconds since the epoch, exact.
Missing numbers are NaN: `volume` NaN is a null volume, `open` NaN means the tick is not a bar
(a bar has all four of open/high/low/close, as `tickwatch.normalize` guarantees).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from tickwatch.clock import from_micros, micros
from tickwatch.model import AssetType, Tick

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
I8 = npt.NDArray[np.int8]

ASSET_TYPES = (AssetType.STOCK, AssetType.CRYPTO)  # asset_code 0 and 1


@dataclass(slots=True)
class TickBatch:
    symbols: list[str]
    sources: list[str]
    symbol_code: I32
    source_code: I32
    asset_code: I8
    event: I64
    ingest: I64
    price: F64
    volume: F64
    open: F64
    high: F64
    low: F64
    close: F64

    def __len__(self) -> int:
        return len(self.event)

    @classmethod
    def from_ticks(cls, ticks: Sequence[Tick]) -> TickBatch:
        symbols: dict[str, int] = {}
        sources: dict[str, int] = {}
        nan = float("nan")
        n = len(ticks)
        sym = np.fromiter((symbols.setdefault(t.symbol, len(symbols)) for t in ticks), np.int32, n)
        src = np.fromiter((sources.setdefault(t.source, len(sources)) for t in ticks), np.int32, n)

        def floats(values: object) -> F64:
            return np.fromiter(values, np.float64, n)  # type: ignore[call-overload,no-any-return]

        return cls(
            symbols=list(symbols),
            sources=list(sources),
            symbol_code=sym,
            source_code=src,
            asset_code=np.fromiter((t.asset_type is AssetType.CRYPTO for t in ticks), np.int8, n),
            event=np.fromiter((micros(t.event_time) for t in ticks), np.int64, n),
            ingest=np.fromiter((micros(t.ingest_time) for t in ticks), np.int64, n),
            price=floats(t.price for t in ticks),
            volume=floats(nan if t.volume is None else t.volume for t in ticks),
            open=floats(nan if t.open is None else t.open for t in ticks),
            high=floats(nan if t.high is None else t.high for t in ticks),
            low=floats(nan if t.low is None else t.low for t in ticks),
            close=floats(nan if t.close is None else t.close for t in ticks),
        )

    def to_arrow(self) -> pa.Table:
        """The ticks as the lake's raw_ticks columns (NaN numbers become nulls)."""

        def text(codes: I32, names: list[str]) -> pa.Array:
            return pa.DictionaryArray.from_arrays(
                pa.array(codes), pa.array(names, pa.string())
            ).dictionary_decode()

        ts = pa.timestamp("us", tz="UTC")
        return pa.table(
            {
                "source": text(self.source_code, self.sources),
                "asset_type": text(
                    self.asset_code.astype(np.int32), [a.value for a in ASSET_TYPES]
                ),
                "symbol": text(self.symbol_code, self.symbols),
                "event_time": pa.array(self.event, ts),
                "ingest_time": pa.array(self.ingest, ts),
                **{
                    name: pa.array(getattr(self, name), pa.float64(), from_pandas=True)
                    for name in ("price", "volume", "open", "high", "low", "close")
                },
            }
        )

    def tick(self, i: int) -> Tick:
        """Row `i` as a Tick (for the rare rows that leave the fast path, e.g. late ones)."""

        def opt(value: float) -> float | None:
            return None if value != value else value

        bar = self.open[i] == self.open[i]
        return Tick(
            source=self.sources[self.source_code[i]],
            asset_type=ASSET_TYPES[self.asset_code[i]],
            symbol=self.symbols[self.symbol_code[i]],
            event_time=from_micros(int(self.event[i])),
            ingest_time=from_micros(int(self.ingest[i])),
            price=float(self.price[i]),
            volume=opt(float(self.volume[i])),
            open=float(self.open[i]) if bar else None,
            high=float(self.high[i]) if bar else None,
            low=float(self.low[i]) if bar else None,
            close=float(self.close[i]) if bar else None,
        )
