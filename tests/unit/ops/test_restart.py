"""Restart launchers: real local processes, and the Docker Engine API on a loopback server."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from tickwatch.errors import RestartError
from tickwatch.ops.restart import DockerLauncher, LocalLauncher

SLEEPER = f"{sys.executable} -c 'import time; time.sleep(60)'"


def test_local_launcher_starts_restarts_and_stops(tmp_path: Path):
    launcher = LocalLauncher(tmp_path / "run", {"producer-stock": SLEEPER})
    assert launcher.alive("producer-stock") is None  # never started: no record
    launcher.start("producer-stock")
    first = launcher.pid("producer-stock")
    assert launcher.alive("producer-stock") is True
    launcher.start("producer-stock")  # already running: no second process
    assert launcher.pid("producer-stock") == first
    launcher.restart("producer-stock")
    second = launcher.pid("producer-stock")
    assert second is not None and second != first
    assert launcher.alive("producer-stock") is True
    launcher.stop("producer-stock")
    assert launcher.alive("producer-stock") is None
    assert (tmp_path / "run" / "producer-stock.log").exists()


def test_local_launcher_needs_a_command(tmp_path: Path):
    launcher = LocalLauncher(tmp_path, {"producer-stock": ""})
    with pytest.raises(RestartError, match="set PRODUCER_CRYPTO_COMMAND"):
        launcher.start("producer-crypto")
    with pytest.raises(RestartError, match="unknown service 'web'"):
        launcher.start("web")


def test_docker_launcher_uses_the_engine_api(httpserver: HTTPServer):
    name = "/containers/tw-producer-crypto"
    httpserver.expect_request(f"{name}/restart", method="POST").respond_with_data("", status=204)
    httpserver.expect_request(f"{name}/json", method="GET").respond_with_json(
        {"Name": "tw-producer-crypto", "State": {"Status": "running", "Running": True}}
    )
    httpserver.expect_request("/containers/tw-stream-job/json").respond_with_json(
        {"message": "No such container: tw-stream-job"}, status=404
    )
    httpserver.expect_request("/containers/tw-stream-job/restart", method="POST").respond_with_json(
        {"message": "No such container: tw-stream-job"}, status=404
    )
    launcher = DockerLauncher(f"tcp://127.0.0.1:{httpserver.port}", "tw-")
    launcher.restart("producer-crypto")
    assert launcher.alive("producer-crypto") is True
    assert launcher.alive("stream-job") is None
    with pytest.raises(RestartError, match="no container named tw-stream-job"):
        launcher.restart("stream-job")


def test_docker_api_unreachable_says_where(tmp_path: Path):
    launcher = DockerLauncher(f"unix://{tmp_path}/docker.sock", "tw-")
    with pytest.raises(RestartError, match="did not answer"):
        launcher.restart("producer-stock")
