"""The live market sources, and whether their APIs can be reached at all.

`live_reachable` answers "is there a network path to either API?", not "will it serve data":
any HTTP answer counts (a bad key or a rate limit shows later in the source's health). It
sends no API key and calls no data function, so it spends none of the Alpha Vantage budget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import httpx

from tickwatch.config import Settings
from tickwatch.sources import Source
from tickwatch.sources.alphavantage import AlphaVantageSource
from tickwatch.sources.coingecko import CoinGeckoSource

log = logging.getLogger(__name__)


def live_sources(settings: Settings, clock: Callable[[], datetime] | None = None) -> list[Source]:
    """Alpha Vantage for STOCK_SYMBOLS and CoinGecko for CRYPTO_IDS (each when non-empty)."""
    sources: list[Source] = []
    if settings.stock_symbols:
        sources.append(AlphaVantageSource(settings, clock=clock))
    if settings.crypto_ids:
        sources.append(CoinGeckoSource(settings, clock=clock))
    return sources


def live_reachable(settings: Settings, timeout: float = 3.0) -> bool:
    """True when either API answers HTTP within `timeout` seconds."""
    probes = (
        ("HEAD", settings.alpha_vantage_base_url),
        ("GET", settings.coingecko_base_url.rstrip("/") + "/ping"),
    )
    with httpx.Client(timeout=timeout) as client:
        for method, url in probes:
            try:
                client.request(method, url)
            except httpx.HTTPError as exc:
                log.info("%s is not reachable: %s", url, type(exc).__name__)
                continue
            return True
    return False
