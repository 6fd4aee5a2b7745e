"""Restart actions for the distributed mode: bring back a dead producer or stream job.

Services are `producer-stock`, `producer-crypto` and `stream-job`. Two launchers, chosen by
RESTART_BACKEND:

- `local`: each service is a process started from its command line (PRODUCER_STOCK_COMMAND,
  PRODUCER_CRYPTO_COMMAND, STREAM_JOB_COMMAND) in its own session, with its pid in
  `DATA_DIR/run/SERVICE.pid` and its output in `DATA_DIR/run/SERVICE.log`. A restart stops the
  recorded process (TERM, then KILL after a grace period) and starts a new one.
- `docker`: each service is the container DOCKER_CONTAINER_PREFIX + service; a restart is the
  Docker Engine API's `POST /containers/NAME/restart` over DOCKER_HOST (a unix socket or tcp).

In embedded mode there is nothing to restart here: the runtime's Supervisor restarts its own
tasks with backoff (tickwatch.ops.supervise).
"""

from __future__ import annotations

import logging
import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx

from tickwatch.config import Settings
from tickwatch.errors import RestartError

log = logging.getLogger(__name__)

SERVICES = ("producer-stock", "producer-crypto", "stream-job")
STOP_GRACE_SECONDS = 10.0


class Launcher(Protocol):
    def alive(self, service: str) -> bool | None:
        """True or False when known, None when this launcher has no record of the service."""
        ...

    def start(self, service: str) -> None: ...

    def stop(self, service: str) -> None: ...

    def restart(self, service: str) -> None: ...


def _check_service(service: str) -> None:
    if service not in SERVICES:
        raise RestartError(f"unknown service {service!r}; known: {', '.join(SERVICES)}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) is dead for our purposes
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


@dataclass
class LocalLauncher:
    """`env` (None: this process's environment) is what each started process gets; secrets
    travel there, never on the command line. `cwd` (None: this process's) is where they run
    (their `.env`). `commands` names the services it knows."""

    run_dir: Path
    commands: dict[str, str]
    env: dict[str, str] | None = None
    grace_seconds: float = STOP_GRACE_SECONDS
    cwd: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalLauncher:
        return cls(
            settings.data_dir / "run",
            {
                "producer-stock": settings.producer_stock_command,
                "producer-crypto": settings.producer_crypto_command,
                "stream-job": settings.stream_job_command,
            },
        )

    def _pidfile(self, service: str) -> Path:
        return self.run_dir / f"{service}.pid"

    def pid(self, service: str) -> int | None:
        try:
            return int(self._pidfile(service).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _check(self, service: str) -> None:
        if service not in self.commands:
            _check_service(service)

    def alive(self, service: str) -> bool | None:
        self._check(service)
        pid = self.pid(service)
        return None if pid is None else pid_alive(pid)

    def start(self, service: str) -> None:
        self._check(service)
        command = self.commands.get(service, "").strip()
        if not command:
            variable = service.replace("-", "_").upper() + "_COMMAND"
            raise RestartError(f"no command line for {service}: set {variable} to restart it")
        if self.alive(service):
            log.info("%s already runs (pid %s)", service, self.pid(service))
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with (self.run_dir / f"{service}.log").open("ab") as output:
            try:
                process = subprocess.Popen(
                    shlex.split(command),
                    stdin=subprocess.DEVNULL,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=self.env,
                    cwd=self.cwd,
                )
            except OSError as exc:
                raise RestartError(f"cannot start {service} with {command!r}: {exc}") from exc
        self._pidfile(service).write_text(f"{process.pid}\n")
        log.info("started %s (pid %d): %s", service, process.pid, command)

    def stop(self, service: str) -> None:
        self._check(service)
        pid = self.pid(service)
        if pid is None or not pid_alive(pid):
            self._pidfile(service).unlink(missing_ok=True)
            return
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_seconds
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if pid_alive(pid):
            log.warning(
                "%s (pid %d) ignored TERM for %.0fs; killing it", service, pid, self.grace_seconds
            )
            _signal(pid, signal.SIGKILL)
        self._pidfile(service).unlink(missing_ok=True)
        log.info("stopped %s (pid %d)", service, pid)

    def restart(self, service: str) -> None:
        self.stop(service)
        self.start(service)


def _signal(pid: int, signum: int) -> None:
    """To the whole session a launcher started (e.g. the Spark driver's JVM), else the pid."""
    os.killpg(pid, signum) if _is_group_leader(pid) else os.kill(pid, signum)


def _is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


@dataclass
class DockerLauncher:
    """The Docker Engine API (https://docs.docker.com/reference/api/engine/)."""

    host: str
    prefix: str
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> DockerLauncher:
        return cls(settings.docker_host, settings.docker_container_prefix)

    def _client(self) -> httpx.Client:
        if self.host.startswith("unix://"):
            transport = httpx.HTTPTransport(uds=self.host.removeprefix("unix://"))
            return httpx.Client(transport=transport, base_url="http://docker", timeout=self.timeout)
        return httpx.Client(base_url=self.host.replace("tcp://", "http://"), timeout=self.timeout)

    def _call(self, method: str, path: str) -> httpx.Response:
        try:
            with self._client() as client:
                response = client.request(method, path)
        except httpx.HTTPError as exc:
            raise RestartError(f"Docker API at {self.host} did not answer: {exc}") from exc
        if response.status_code >= 400 and response.status_code != 404:
            raise RestartError(
                f"Docker API {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
        return response

    def alive(self, service: str) -> bool | None:
        _check_service(service)
        response = self._call("GET", f"/containers/{self.prefix}{service}/json")
        if response.status_code == 404:
            return None
        return bool(response.json().get("State", {}).get("Running"))

    def _act(self, service: str, action: str) -> None:
        _check_service(service)
        response = self._call("POST", f"/containers/{self.prefix}{service}/{action}")
        if response.status_code == 404:
            raise RestartError(f"no container named {self.prefix}{service} on {self.host}")
        log.info("docker %s %s%s", action, self.prefix, service)

    def start(self, service: str) -> None:
        self._act(service, "start")

    def stop(self, service: str) -> None:
        self._act(service, "stop")

    def restart(self, service: str) -> None:
        self._act(service, "restart")


def launcher(settings: Settings) -> Launcher:
    if settings.restart_backend == "docker":
        return DockerLauncher.from_settings(settings)
    return LocalLauncher.from_settings(settings)
