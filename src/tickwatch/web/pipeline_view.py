"""What the web app reads of a running pipeline: the runtime satisfies this protocol.

The web layer sits right of the runtime in the data flow, so it names only the attributes it
reads; `tickwatch serve` runs the app over a store with no pipeline at all (None).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from tickwatch.bus import Bus
from tickwatch.ops.supervise import Supervisor
from tickwatch.processor import Counters
from tickwatch.sources import Source


class PipelineView(Protocol):
    @property
    def counters(self) -> Counters: ...

    @property
    def sources(self) -> Sequence[Source]: ...

    @property
    def supervisor(self) -> Supervisor: ...

    @property
    def bus(self) -> Bus: ...
