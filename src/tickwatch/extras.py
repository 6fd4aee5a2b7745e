"""Optional extras: what each one brings, and an error that says how to install it.

The core install (pyproject's `dependencies`) runs the embedded pipeline: simulator or live APIs,
in-process bus, SQLite + Parquet, web dashboard. The rest are extras, imported only by the code
that needs them (STYLE 18):

    kafka    confluent-kafka         BUS=kafka, the Kafka operations checks
    spark    pyspark, pandas, kafka  `tickwatch spark`
    deploy   grafana-foundation-sdk  `python -m tickwatch.grafana` (generates grafana/)
    dev      tests, linters, all of the above

Code that needs an extra calls `require` before importing it, so a missing extra is a
`ConfigError` naming the install command instead of a bare ModuleNotFoundError deep in a stack.
"""

from __future__ import annotations

import importlib

from tickwatch.errors import ConfigError

EXTRAS: dict[str, tuple[str, ...]] = {
    "kafka": ("confluent_kafka",),
    "spark": ("pyspark", "pandas", "confluent_kafka"),
    "deploy": ("grafana_foundation_sdk",),
}


def missing(extra: str) -> list[str]:
    """The modules of `extra` that cannot be imported here (empty when it is installed)."""
    absent = []
    for module in EXTRAS[extra]:
        try:
            importlib.import_module(module)
        except ImportError:
            absent.append(module)
    return absent


def require(extra: str, purpose: str) -> None:
    """Raise ConfigError when `extra` is not installed; `purpose` names what needed it."""
    absent = missing(extra)
    if absent:
        raise ConfigError(
            f"{purpose} needs the '{extra}' extra ({', '.join(absent)} not installed): "
            f"pip install 'tickwatch[{extra}]', or from a checkout "
            f"`.venv/bin/pip install -c requirements.lock -e '.[{extra}]'`"
        )
