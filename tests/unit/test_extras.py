"""tickwatch.extras: optional packages load only when used, and a missing one says how to fix it.

Each case runs in a fresh interpreter: `sys.modules[name] = None` there makes `import name` fail
exactly as it does where the package is not installed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tickwatch.extras import EXTRAS, missing


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120
    )


@pytest.mark.parametrize("extra", sorted(EXTRAS))
def test_every_extra_is_installed_for_the_tests(extra: str) -> None:
    assert missing(extra) == []


def test_a_missing_extra_names_the_install_command() -> None:
    done = _run(
        "import sys\n"
        "sys.modules['confluent_kafka'] = None\n"
        "from tickwatch.extras import require\n"
        "require('kafka', 'BUS=kafka')\n"
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last == (
        "tickwatch.errors.ConfigError: BUS=kafka needs the 'kafka' extra (confluent_kafka not "
        "installed): pip install 'tickwatch[kafka]', or from a checkout "
        "`.venv/bin/pip install -c requirements.lock -e '.[kafka]'`"
    )


def test_the_memory_bus_runs_without_the_kafka_extra() -> None:
    done = _run(
        "import sys\n"
        "sys.modules['confluent_kafka'] = None\n"
        "from tickwatch.config import load_settings\n"
        "from tickwatch.runtime import open_bus\n"
        "bus = open_bus(load_settings(bus='memory'))\n"
        "print(type(bus).__name__)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["MemoryBus"]


def test_bus_kafka_without_the_extra_is_a_config_error() -> None:
    done = _run(
        "import sys\n"
        "sys.modules['confluent_kafka'] = None\n"
        "from tickwatch.config import load_settings\n"
        "from tickwatch.errors import ConfigError\n"
        "from tickwatch.runtime import open_bus\n"
        "try:\n"
        "    open_bus(load_settings(bus='kafka'))\n"
        "except ConfigError as exc:\n"
        "    print(exc)\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("BUS=kafka needs the 'kafka' extra")


def test_the_checks_run_in_embedded_mode_without_the_kafka_extra(tmp_path: Path) -> None:
    done = _run(
        "import sys\n"
        "sys.modules['confluent_kafka'] = None\n"
        "from tickwatch.config import load_settings\n"
        "from tickwatch.ops.checks import OpsContext, expand, run_checks\n"
        f"ctx = OpsContext.from_settings(load_settings(data_dir={str(tmp_path)!r}))\n"
        "assert 'consumer-lag' in expand(['pipeline'])\n"
        "for r in run_checks(['kafka', 'topics', 'consumer-lag'], ctx):\n"
        "    print(r.name, r.verdict.value)\n"
        "ctx.close()\n"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["kafka ok", "topics ok", "consumer-lag ok"]


def test_cli_bus_kafka_without_the_extra_exits_2_with_the_fix(tmp_path: Path) -> None:
    done = _run(
        "import sys\n"
        "sys.modules['confluent_kafka'] = None\n"
        "from typer.testing import CliRunner\n"
        "from tickwatch.cli import app\n"
        "args = ['run', '--bus', 'kafka', '--source', 'simulate', '--no-web', '--duration', '1',\n"
        f"        '--data-dir', {str(tmp_path)!r}]\n"
        "result = CliRunner().invoke(app, args, env={'COLUMNS': '500'})\n"
        "print(result.exit_code)\n"
        "print(' '.join(result.output.split()))\n"
    )
    assert done.returncode == 0, done.stderr
    code, output = done.stdout.splitlines()
    assert code == "2"
    assert output == (
        "error: BUS=kafka needs the 'kafka' extra (confluent_kafka not installed): "
        "pip install 'tickwatch[kafka]', or from a checkout "
        "`.venv/bin/pip install -c requirements.lock -e '.[kafka]'`"
    )
