"""The documented commands keep the store's password out of command lines.

A process's arguments are readable by every user (`ps`), its environment only by its owner:
the README and docs pass STORE_URL through the environment, never as `--store URL`. The README's
distributed block and docs/DISTRIBUTED.md also agree on the data dir, so the checks find the
Spark checkpoint the job writes.
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


def test_readme_distributed_block_exports_the_secrets_and_one_data_dir() -> None:
    readme = _section((ROOT / "README.md").read_text(), "Distributed mode")
    block = _blocks(readme)[0]
    assert "export STORE_URL=$(scripts/postgres.sh start" in block
    assert "DATA_DIR=.cache/run/data" in block
    distributed = (ROOT / "docs" / "DISTRIBUTED.md").read_text()
    assert "export STORE_URL=$(scripts/postgres.sh start" in distributed
    assert "DATA_DIR=.cache/run/data" in _blocks(distributed)[0]
