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
from tickwatch.sources.streams import stream_source

log = logging.getLogger(__name__)


def live_sources(settings: Settings, clock: Callable[[], datetime] | None = None) -> list[Source]:
    """STOCK_SOURCE for STOCK_SYMBOLS and each CRYPTO_SOURCE feed for CRYPTO_IDS (each when
    non-empty): the polled APIs (Alpha Vantage, CoinGecko) or a venue's trade stream
    (sources.streams). Several crypto feeds all publish the same canonical symbols: the engine
    windows their consolidated tape and the divergence tracker compares them."""
    sources: list[Source] = []
    if settings.stock_symbols:
        if settings.stock_source == "alphavantage":
            sources.append(AlphaVantageSource(settings, clock=clock))
        else:
            sources.append(stream_source(settings, settings.stock_source))
    if settings.crypto_ids:
        for venue in settings.crypto_venues:
            if venue == "coingecko":
                sources.append(CoinGeckoSource(settings, clock=clock))
            else:
                sources.append(stream_source(settings, venue))
    return sources


def live_reachable(settings: Settings, timeout: float = 3.0) -> bool:
    """True when any chosen API answers HTTP within `timeout` seconds."""
    probes = [
        ("HEAD", settings.alpha_vantage_base_url),
        ("GET", settings.coingecko_base_url.rstrip("/") + "/ping"),
    ]
    venue_rest = {
        "coinbase": settings.coinbase_rest_url,
        "kraken": settings.kraken_rest_url,
        "binance": settings.binance_rest_url,
    }
    for venue in reversed(settings.crypto_venues):  # a venue's REST root stands for its stream
        if venue in venue_rest:
            probes.insert(0, ("HEAD", venue_rest[venue]))
    with httpx.Client(timeout=timeout) as client:
        for method, url in probes:
            try:
                client.request(method, url)
            except httpx.HTTPError as exc:
                log.info("%s is not reachable: %s", url, type(exc).__name__)
                continue
            return True
    return False
