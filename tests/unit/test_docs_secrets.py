"""The documented commands keep the store's password out of command lines.

A process's arguments are readable by every user (`ps`), its environment only by its owner:
the README and docs pass STORE_URL through the environment, never as `--store URL`. The README's
distributed block is `tickwatch stack` (tests/integration/test_stack.py runs it); the manual
steps of docs/DISTRIBUTED.md export the URL and one data dir, so the checks find the Spark
checkpoint the job writes.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"```(?:bash|sh)\n(.*?)```", re.DOTALL)


def _blocks(text: str) -> list[str]:
    return FENCE.findall(text)


def _section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def test_documented_commands_pass_no_store_url_as_an_argument() -> None:
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in _blocks(doc.read_text()):
            for line in block.splitlines():
                if "tickwatch" in line and not line.lstrip().startswith("#"):
                    assert not re.search(r"--store[ =]", line), f"{doc.name}: {line}"


def test_readme_distributed_block_is_the_stack_and_docs_export_the_secrets() -> None:
    readme = _section((ROOT / "README.md").read_text(), "Distributed mode")
    block = _blocks(readme)[0]
    assert "tickwatch stack up" in block  # the stack passes the password in the environment
    assert "STORE_URL" not in block and "postgresql" not in block
    distributed = (ROOT / "docs" / "DISTRIBUTED.md").read_text()
    manual = [b for b in _blocks(distributed) if "export STORE_URL=$(scripts/postgres.sh" in b]
    assert manual and "DATA_DIR=.cache/run/data" in manual[0]
