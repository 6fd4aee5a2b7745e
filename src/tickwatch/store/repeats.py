"""Raw ticks that may repeat a key the lake already holds, found with array operations.

The raw tick lake keeps each key (source, symbol, event time) once; compaction enforces it by
sorting whole day partitions. A replay's ticks mostly arrive in event-time order within each
series (source, symbol), and what a replay repeats is mostly the tick just before it (a poll
returning the same bar). `KeyWatch` keeps each series' latest event time across blocks and
sorts a block's rows into:
- new: later than every earlier tick of the series, so its key was never written;
- repeats: the instant an earlier row of the same block reached; of such a run only the last
  row is kept (the latest write wins, as compaction would keep it);
- doubtful: anything else (earlier than the series' latest time, or equal to one reached in
  an earlier block); the partition it lands in is compacted as before.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from tickwatch.engine.columnar import NONE, segment_cummax

Mask = npt.NDArray[np.bool_]


class KeyWatch:
    def __init__(self) -> None:
        self._ids: dict[tuple[str, str], int] = {}
        self._latest = np.zeros(0, np.int64)

    def scan(self, ticks: pa.Table) -> tuple[Mask, Mask]:
        """(rows to write, doubtful rows) of `ticks` (raw_ticks columns), in row order."""
        series = self._series(ticks)
        event = ticks["event_time"].combine_chunks().cast(pa.int64()).to_numpy()
        order = np.argsort(series, kind="stable")
        s, e = series[order], event[order]
        first = np.ones(len(s), bool)
        first[1:] = s[1:] != s[:-1]
        running = segment_cummax(e, first)
        earlier = np.empty_like(running)  # latest time of the series before each row
        earlier[0] = NONE
        earlier[1:] = np.where(first[1:], NONE, running[:-1])
        new = e > np.maximum(earlier, self._latest[s])
        repeat = ~first & (e == earlier) & (earlier > self._latest[s])
        last = np.ones(len(s), bool)
        last[:-1] = first[1:]
        self._latest[s[last]] = np.maximum(running[last], self._latest[s[last]])
        followed = np.zeros(len(s), bool)  # a row whose key the next row repeats
        followed[:-1] = repeat[1:] & (e[:-1] == e[1:])
        keep, doubtful = np.empty(len(s), bool), np.empty(len(s), bool)
        keep[order] = ~followed
        doubtful[order] = ~(new | repeat)
        return keep, doubtful

    def _series(self, ticks: pa.Table) -> npt.NDArray[np.int64]:
        """A stable integer per (source, symbol) across blocks."""
        codes = []
        names = []
        for column in ("source", "symbol"):
            encoded = pc.dictionary_encode(ticks[column].combine_chunks())
            codes.append(encoded.indices.to_numpy().astype(np.int64))
            names.append(encoded.dictionary.to_pylist())
        width = len(names[1])
        distinct, inverse = np.unique(codes[0] * width + codes[1], return_inverse=True)
        ids = np.array(
            [
                self._ids.setdefault((names[0][p // width], names[1][p % width]), len(self._ids))
                for p in distinct.tolist()
            ],
            np.int64,
        )
        if len(self._ids) > len(self._latest):
            grow = np.full(len(self._ids) - len(self._latest), NONE, np.int64)
            self._latest = np.concatenate([self._latest, grow])
        return ids[inverse.reshape(-1)]
