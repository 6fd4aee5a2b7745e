"""The reliability ledger: fault and bad-input tests record what they tried and what they found.

At the end of the session the rows become a Markdown table: test-artifacts/RELIABILITY.md always,
and docs/RELIABILITY.md when TICKWATCH_WRITE_REPORTS=1 (set by `make test`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Entry:
    area: str
    case: str
    cases: int
    expected: str
    found: str

    @property
    def ok(self) -> bool:
        return self.expected == self.found


@dataclass
class Ledger:
    entries: list[Entry] = field(default_factory=list)

    def record(self, area: str, case: str, cases: int, expected: object, found: object) -> None:
        self.entries.append(Entry(area, case, cases, str(expected), str(found)))

    def markdown(self) -> str:
        lines = [
            "# Reliability",
            "",
            "Produced by the test suite (`make test`, tests under `tests/reliability/` and the",
            "fault tests of the distributed parts); regenerated on every full run. Each row is one",
            "class of fault or bad input: how many runs and cases were tried, the rows a",
            "fault-free run gives, and what was found after the fault; green means every run",
            "matched.",
            "",
            "| area | fault or input class | runs | cases | expected (last run) "
            "| found (last run) | outcome |",
            "| --- | --- | ---: | ---: | --- | --- | --- |",
        ]
        merged: dict[tuple[str, str], list[Entry]] = {}
        for entry in self.entries:
            merged.setdefault((entry.area, entry.case), []).append(entry)
        for (area, case), entries in sorted(merged.items()):
            cases = sum(e.cases for e in entries)
            last = entries[-1]
            ok = all(e.ok for e in entries)
            lines.append(
                f"| {area} | {case} | {len(entries)} | {cases} | {last.expected} "
                f"| {last.found} | {'green' if ok else 'RED'} |"
            )
        return "\n".join(lines) + "\n"

    def write(self) -> None:
        if not self.entries:
            return
        text = self.markdown()
        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        (ROOT / "test-artifacts" / "RELIABILITY.md").write_text(text)
        if os.environ.get("TICKWATCH_WRITE_REPORTS") == "1":
            (ROOT / "docs" / "RELIABILITY.md").write_text(text)


LEDGER = Ledger()
