"""`tickwatch --help` answers at once: the CLI module loads no engine, store, web app or extra.

Each case runs in a fresh interpreter, so modules imported by other tests do not count.
"""

from __future__ import annotations

import subprocess
import sys

# Heavy or optional packages a bare `import tickwatch.cli` must leave alone (STYLE 18).
HEAVY = (
    "pandas",
    "pyarrow",
    "numpy",
    "sqlalchemy",
    "fastapi",
    "uvicorn",
    "pydantic_settings",
    "confluent_kafka",
    "pyspark",
    "grafana_foundation_sdk",
)


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return set(done.stdout.split())


def test_importing_the_cli_loads_no_heavy_package() -> None:
    assert _loaded_after("import tickwatch.cli") & set(HEAVY) == set()


def test_help_loads_no_heavy_package() -> None:
    code = (
        "from typer.testing import CliRunner\n"
        "from tickwatch.cli import app\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "assert 'replay' in result.output\n"
    )
    assert _loaded_after(code) & set(HEAVY) == set()
