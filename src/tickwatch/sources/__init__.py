"""Market data sources. Each yields batches of records in the replay format.

A record is a mapping (`source, asset_type, symbol, event_time, price, volume, ...`) or the raw
bytes of a line that could not be read; `tickwatch.normalize` validates both the same way.
A source paces itself and stops when `stop` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

Record = Mapping[str, Any] | bytes


class Source(Protocol):
    name: str

    def batches(self, stop: threading.Event) -> Iterator[list[Record]]: ...
