"""The local distributed stack in one command: `tickwatch stack up | status | down`.

The no-Docker equivalent of `docker compose up`: PostgreSQL and Kafka from the project's
scripts (scripts/postgres.sh, scripts/kafka.sh), then the two producers, the Spark job, the
alerts consumer, the web app and, when asked, Airflow standalone, each a background process
in its own session. Everything lives under `DATA_DIR/stack/`:

    stack.json            how the stack was started: mode, bus, broker, store URL (no password),
                          web and Airflow URLs, the command line of every service
    postgres/ kafka/      the servers' folders (server.log, broker.log)
    SERVICE.pid .log      producer-stock, producer-crypto, stream-job, alerts, web, airflow
    airflow/              AIRFLOW_HOME (database migrated before the first start)

**Secrets.** The store's password is POSTGRES_PASSWORD (from `.env`); it reaches the processes
through their environment (readable by their owner only), never their command line (which `ps`
shows every user). stack.json keeps the URL without it.

**The stack's configuration is the mode.** `tickwatch check`, `tickwatch serve` and the Airflow
tasks call `detect`, which reads stack.json: with a stack under DATA_DIR they judge the
distributed stack (its broker, its store, the Spark checkpoint) without BUS or STORE_URL set.

**Supervision.** `status` shows each process alive or dead; the `market_anomaly_pipeline` DAG
restarts a dead producer or Spark job through `launcher` (same command lines and environment);
`up` again starts whatever is not running; `down` stops each process with SIGTERM, then SIGKILL
after a grace period, and the servers (their data kept unless asked).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import sqlalchemy as sa

from tickwatch.config import Settings
from tickwatch.errors import ConfigError, RestartError
from tickwatch.ops.restart import LocalLauncher, pid_alive
from tickwatch.spark.progress import checkpoint_dir, read_heartbeat

log = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[3]  # a source checkout: the scripts live there
SCRIPTS = ROOT / "scripts"
AIRFLOW_BIN = ROOT / ".venv-airflow" / "bin" / "airflow"
STACK_FILE = "stack.json"
SERVERS = ("postgres", "kafka")
STOP_GRACE_SECONDS = 30.0
READY_SECONDS = 300.0

Source = Literal["auto", "live", "simulate"]


def stack_dir(data_dir: Path) -> Path:
    return data_dir / "stack"


def read_stack(data_dir: Path) -> dict[str, Any] | None:
    """stack.json of the stack under `data_dir`, None when no stack was started there."""
    try:
        body = json.loads((stack_dir(data_dir) / STACK_FILE).read_text())
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def _with_password(url: str, settings: Settings) -> str:
    password = settings.postgres_password.get_secret_value()
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


def detect(settings: Settings) -> Settings:
    """`settings` completed from the stack started under DATA_DIR (bus, broker, store URL with
    POSTGRES_PASSWORD). BUS, KAFKA_BOOTSTRAP_SERVERS or STORE_URL set to anything but their
    default win; a default (even written out, as `.env.example` does) gives way to the stack."""
    stack = read_stack(settings.data_dir)
    if stack is None:
        return settings
    stacked = {
        "bus": stack["bus"],
        "kafka_bootstrap_servers": stack["kafka_bootstrap_servers"],
        "store_url": _with_password(stack["store_url"], settings),
    }
    defaults = {name: Settings.model_fields[name].default for name in stacked}
    update = {k: v for k, v in stacked.items() if getattr(settings, k) in (defaults[k], "")}
    return settings.model_copy(update=update)


def _env(settings: Settings, stack: dict[str, Any]) -> dict[str, str]:
    """The environment of every stack process: this one's, plus the stack's settings."""
    return {
        **os.environ,
        "BUS": "kafka",
        "KAFKA_BOOTSTRAP_SERVERS": stack["kafka_bootstrap_servers"],
        "STORE_URL": _with_password(stack["store_url"], settings),
        "DATA_DIR": str(Path(stack["data_dir"])),
        "WEB_HOST": settings.web_host,
        "WEB_PORT": str(stack["web_port"]),
        "PYTHONUNBUFFERED": "1",
        # the Kafka and Spark jars of this checkout, whatever the working folder
        "TICKWATCH_CACHE": os.environ.get("TICKWATCH_CACHE") or str(ROOT / ".cache"),
        **_airflow_env(settings, Path(stack["data_dir"]), stack.get("airflow_port")),
    }


def launcher(settings: Settings) -> LocalLauncher | None:
    """The launcher of the stack under DATA_DIR (its services' commands and environment), or
    None without a stack there. The Airflow restart tasks use it."""
    stack = read_stack(settings.data_dir)
    if stack is None:
        return None
    return LocalLauncher(
        stack_dir(settings.data_dir),
        dict(stack["services"]),
        _env(settings, stack),
        STOP_GRACE_SECONDS,
        Path(stack["cwd"]) if stack.get("cwd") else None,
    )


def _commands(source: Source, trigger: float, airflow: bool) -> dict[str, str]:
    tickwatch = f"{shlex.quote(sys.executable)} -m tickwatch.cli"
    # one simulator or live source per market: the other market's symbol list is emptied
    run = f"{tickwatch} run --bus kafka --source {source} --no-web"
    commands = {
        "producer-stock": f"env CRYPTO_IDS= {run}",
        "producer-crypto": f"env STOCK_SYMBOLS= {run}",
        "stream-job": f"{tickwatch} spark --master local[2] --trigger {trigger:g}",
        "alerts": f"{tickwatch} alerts",
        "web": f"{tickwatch} serve",
    }
    if airflow:
        commands["airflow"] = f"{shlex.quote(str(AIRFLOW_BIN))} standalone"
    return commands


def _script(*args: str) -> str:
    done = subprocess.run(
        [str(SCRIPTS / args[0]), *args[1:]], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RestartError(f"scripts/{' '.join(args)} failed:\n{done.stderr.strip()[-2000:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def server_pids(data_dir: Path) -> dict[str, int | None]:
    """The pids of the stack's PostgreSQL (postmaster.pid) and Kafka broker (pid file)."""
    folder = stack_dir(data_dir)
    return {
        "postgres": _read_int(folder / "postgres" / "data" / "postmaster.pid"),
        "kafka": _read_int(folder / "kafka" / "pid"),
    }


def _start_postgres(folder: Path, settings: Settings) -> str:
    """Start (or find running) the stack's PostgreSQL; its URL without password. The role's
    password becomes POSTGRES_PASSWORD, set over the local socket (never an argument)."""
    import psycopg
    from psycopg import sql

    pid = _read_int(folder / "data" / "postmaster.pid")
    port = _read_int(folder / "port")
    if not (pid and pid_alive(pid)):
        _script("postgres.sh", "start", str(folder), *([str(port)] if port else []))
        port = _read_int(folder / "port")
    password = settings.postgres_password.get_secret_value()
    with psycopg.connect(
        host=str(folder), port=port, user="postgres", dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(sql.SQL("ALTER ROLE tickwatch PASSWORD {}").format(sql.Literal(password)))
    return f"postgresql+psycopg://tickwatch@127.0.0.1:{port}/tickwatch"


def _start_kafka(folder: Path) -> str:
    pid = _read_int(folder / "pid")
    if pid and pid_alive(pid):
        return f"127.0.0.1:{_read_int(folder / 'port')}"
    return _script("kafka.sh", "start", str(folder))


def _airflow_env(settings: Settings, data_dir: Path, port: int | None) -> dict[str, str]:
    if port is None:
        return {}
    home = stack_dir(data_dir) / "airflow"
    return {
        # `airflow standalone` starts its scheduler, API server, ... as `airflow` from PATH
        "PATH": f"{AIRFLOW_BIN.parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "airflow" / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{settings.airflow_admin_user}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
    }


def _prepare_airflow(settings: Settings, env: dict[str, str]) -> None:
    """Install Airflow (scripts/airflow.sh), migrate its database, write the admin's password
    (AIRFLOW_ADMIN_PASSWORD) where the simple auth manager reads it (owner-only file)."""
    _script("airflow.sh", "install")
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / "passwords.json"
    passwords.touch(mode=0o600)
    passwords.write_text(
        json.dumps(
            {settings.airflow_admin_user: settings.airflow_admin_password.get_secret_value()}
        )
    )
    done = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RestartError(f"airflow db migrate failed:\n{done.stderr.strip()[-2000:]}")


@dataclass(frozen=True)
class Process:
    name: str
    pid: int | None
    alive: bool
    log: Path


def processes(settings: Settings) -> list[Process]:
    """Every process of the stack under DATA_DIR, alive or dead, with its log."""
    folder = stack_dir(settings.data_dir)
    logs = {
        "postgres": folder / "postgres" / "server.log",
        "kafka": folder / "kafka" / "broker.log",
    }
    found = [
        Process(name, pid, pid is not None and pid_alive(pid), logs[name])
        for name, pid in server_pids(settings.data_dir).items()
    ]
    services = launcher(settings)
    if services is not None:
        for name in services.commands:
            pid = services.pid(name)
            found.append(Process(name, pid, bool(services.alive(name)), folder / f"{name}.log"))
    return found


def _wait(what: str, ready: Callable[[], bool], alive: Callable[[], bool], log_file: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while not ready():
        if not alive():
            raise RestartError(f"{what} exited during start-up; read {log_file}")
        if time.monotonic() > deadline:
            raise RestartError(f"{what} not ready after {READY_SECONDS:.0f} s; read {log_file}")
        time.sleep(0.5)


def _listens(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2.0).close()
    except OSError:
        return False
    return True


def up(
    settings: Settings,
    source: Source = "auto",
    trigger_seconds: float = 10.0,
    airflow_port: int | None = None,
) -> dict[str, Any]:
    """Start what is not running yet and wait until it works (the Spark job beats, the web app
    answers); returns stack.json. `airflow_port` None: no Airflow."""
    if settings.web_port == 0:
        raise ConfigError("tickwatch stack needs a fixed WEB_PORT (0 picks an unknown port)")
    data_dir = settings.data_dir.resolve()
    folder = stack_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    log.info("starting PostgreSQL (%s)", folder / "postgres")
    store_url = _start_postgres(folder / "postgres", settings)
    log.info("starting Kafka (%s)", folder / "kafka")
    bootstrap = _start_kafka(folder / "kafka")
    web_url = f"http://{settings.web_host}:{settings.web_port}"
    stack: dict[str, Any] = {
        "mode": "distributed",
        "bus": "kafka",
        "kafka_bootstrap_servers": bootstrap,
        "store_url": store_url,
        "data_dir": str(data_dir),
        "cwd": str(Path.cwd()),  # where every process runs, restarts too: its `.env`
        "web_port": settings.web_port,
        "web_url": web_url,
        "airflow_port": airflow_port,
        "airflow_url": None if airflow_port is None else f"http://127.0.0.1:{airflow_port}",
        "source": source,
        "trigger_seconds": trigger_seconds,
        "services": _commands(source, trigger_seconds, airflow_port is not None),
    }
    temporary = folder / f".{STACK_FILE}.tmp"
    temporary.write_text(json.dumps(stack, indent=2) + "\n")
    temporary.replace(folder / STACK_FILE)
    env = _env(settings, stack)
    _prepare_store_and_topics(env["STORE_URL"], bootstrap, settings)
    if airflow_port is not None:
        _prepare_airflow(settings, env)
    services = launcher(settings.model_copy(update={"data_dir": data_dir}))
    assert services is not None  # stack.json was just written
    for name in services.commands:
        services.start(name)
    heartbeat = checkpoint_dir(data_dir)
    started = time.time()
    _wait(
        "the Spark job",
        lambda: (beat := read_heartbeat(heartbeat)) is not None and beat.at.timestamp() > started,
        lambda: bool(services.alive("stream-job")),
        folder / "stream-job.log",
    )
    _wait(
        "the web app",
        lambda: _listens(settings.web_host, settings.web_port),
        lambda: bool(services.alive("web")),
        folder / "web.log",
    )
    return stack


def _prepare_store_and_topics(store_url: str, bootstrap: str, settings: Settings) -> None:
    """Tables and topics before any process starts, so none waits for another to make them."""
    from tickwatch.bus.kafka import KafkaBus
    from tickwatch.store import SqlStore

    SqlStore(store_url).close()  # PostgreSQL: every table, from the migrations
    KafkaBus(bootstrap, partitions=settings.kafka_topic_partitions).close()


def down(settings: Settings, keep_data: bool = True) -> list[str]:
    """Stop every service (SIGTERM, SIGKILL after 30 s), then Kafka and PostgreSQL; their data
    is kept unless `keep_data` is False. Returns what was stopped."""
    folder = stack_dir(settings.data_dir)
    servers = server_pids(settings.data_dir)
    services = launcher(settings)
    stopped: list[str] = []
    if services is not None:
        for name in reversed(list(services.commands)):
            if services.alive(name):
                stopped.append(name)
            services.stop(name)
    keep = ["--keep"] if keep_data else []
    for name in ("kafka", "postgres"):
        if (folder / name).exists():
            pid = servers[name]
            if pid is not None and pid_alive(pid):
                stopped.append(name)
            _script(f"{name}.sh", "stop", str(folder / name), *keep)
    return stopped
