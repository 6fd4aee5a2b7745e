"""Fixtures of the fault tests: real processes, cleaned up whatever happens."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def spawn() -> Iterator[Any]:
    """subprocess.Popen whose processes are killed when the test ends, whatever happened."""
    started: list[subprocess.Popen[Any]] = []

    def start(*args: Any, **kwargs: Any) -> subprocess.Popen[Any]:
        started.append(subprocess.Popen(*args, **kwargs))
        return started[-1]

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
