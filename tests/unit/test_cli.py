"""The command line: every command DESIGN.md names exists and explains itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["run", "replay", "simulate", "evaluate", "check", "spark", "serve", "produce"]


@pytest.mark.parametrize("command", COMMANDS)
def test_each_command_has_help(command: str):
    done = subprocess.run(
        [sys.executable, "-m", "tickwatch.cli", command, "--help"],
        capture_output=True,
        text=True,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout


def test_bench_hands_its_options_to_the_benchmark_runner():
    done = subprocess.run(
        [sys.executable, "-m", "tickwatch.cli", "bench", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "usage: python -m bench" in done.stdout and "--spark-ticks" in done.stdout
