"""scripts/kafka.sh's KRaft cluster id: the storage tool reads an id that starts with "-" as an
option ("argument --cluster-id: expected one argument"), which failed 1 fresh broker in 64."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "kafka.sh"


def test_cluster_ids_never_start_with_a_dash_and_are_16_bytes_of_base64url() -> None:
    command = re.search(r"cluster=\$\(python3 -c '(.*?)'\)", SCRIPT.read_text(), re.S)
    assert command is not None, "kafka.sh no longer draws its cluster id with python3 -c"
    loop = f"exec({command.group(1)!r}.replace('print(text)', 'ids.append(text)'))"
    program = f"ids = []\nfor _ in range(3000):\n    {loop}\nprint('\\n'.join(ids))"
    ids = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True
    ).stdout.split()
    # with a leading "-" in 1 draw of 64, 3,000 draws hold one unless the script redraws
    assert len(ids) == 3000 and not [i for i in ids if i.startswith("-")]
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)
