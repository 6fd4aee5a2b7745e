"""Streaming trade sources: one module per venue behind one `TradeStream` (trades.py).

| venue | asset | module | key | gap detection | backfill |
| --- | --- | --- | --- | --- | --- |
| Coinbase Exchange | crypto | coinbase.py | none | trade_id (and heartbeat) | REST trades |
| Kraken (WS v1) | crypto | kraken.py | none | after reconnects | REST trades by time |
| Binance spot | crypto | binance.py | none | aggregate trade id | REST aggTrades |
| Finnhub | stock | finnhub.py | FINNHUB_API_KEY | after reconnects | none (quality event) |

`stream_source` builds one venue of CRYPTO_SOURCE (a list) or STOCK_SOURCE.
"""

from __future__ import annotations

from tickwatch.config import Settings
from tickwatch.sources.streams.binance import Binance
from tickwatch.sources.streams.coinbase import Coinbase
from tickwatch.sources.streams.finnhub import Finnhub
from tickwatch.sources.streams.kraken import Kraken
from tickwatch.sources.streams.trades import TradeStream, Venue

VENUES: dict[str, type[Coinbase] | type[Kraken] | type[Binance] | type[Finnhub]] = {
    "coinbase": Coinbase,
    "kraken": Kraken,
    "binance": Binance,
    "finnhub": Finnhub,
}


def stream_source(settings: Settings, venue: str, duration: float | None = None) -> TradeStream:
    """The trade stream of `venue` for CRYPTO_IDS (crypto venues) or STOCK_SYMBOLS (Finnhub)."""
    chosen: Venue = VENUES[venue](settings)
    return TradeStream(chosen, settings, duration=duration)


__all__ = ["VENUES", "TradeStream", "stream_source"]
