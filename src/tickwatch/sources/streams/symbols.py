"""Venue market names (`BTC-USD`, `XBT/USD`, `BTCUSDT`) to tickwatch's canonical crypto symbols.

A crypto series is named the way CoinGecko names it (`CRYPTO_IDS`): the coin id, `bitcoin`.
That name means the coin priced in US dollars. Another quote currency is another series, so it
gets a suffix: `bitcoin-usdt`, `bitcoin-eur` (USDT is not USD: a depeg is a market event, not
noise to average away). A base ticker tickwatch has no coin id for keeps its ticker in lower
case (`skl`, `band-gbp`). The venue's own name travels with every tick as `market`.
"""

from __future__ import annotations

from tickwatch.errors import ConfigError

# CoinGecko coin id -> the ticker exchanges use. Kraken's legacy names (XBT, XDG) are aliases.
TICKERS = {
    "bitcoin": "BTC",
    "ethereum": "ETH",
    "solana": "SOL",
    "cardano": "ADA",
    "ripple": "XRP",
    "dogecoin": "DOGE",
    "litecoin": "LTC",
    "polkadot": "DOT",
    "chainlink": "LINK",
    "avalanche-2": "AVAX",
    "stellar": "XLM",
    "bitcoin-cash": "BCH",
    "uniswap": "UNI",
    "tron": "TRX",
    "monero": "XMR",
}
ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
_COINS = {ticker: coin for coin, ticker in TICKERS.items()}
# quote currencies Binance glues to the base (BTCUSDT), longest first so USDT wins over USD
QUOTES = ("FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USD", "EUR", "GBP", "TRY", "BTC", "ETH", "BNB")


def canonical(base: str, quote: str) -> str:
    """The series name of `base` priced in `quote` (tickers, any case)."""
    base = ALIASES.get(base.upper(), base.upper())
    quote = ALIASES.get(quote.upper(), quote.upper())
    name = _COINS.get(base, base.lower())
    return name if quote == "USD" else f"{name}-{quote.lower()}"


def split_glued(market: str) -> tuple[str, str]:
    """`BTCUSDT` -> (`BTC`, `USDT`) by the known quote suffixes."""
    upper = market.upper()
    for quote in QUOTES:
        if upper.endswith(quote) and len(upper) > len(quote):
            return upper[: -len(quote)], quote
    raise ValueError(f"market {market!r} ends in no known quote currency ({', '.join(QUOTES)})")


def ticker(coin: str, venue: str) -> str:
    """The exchange ticker of CoinGecko coin id `coin`, or a ConfigError saying what to do."""
    try:
        return TICKERS[coin]
    except KeyError:
        raise ConfigError(
            f"CRYPTO_IDS names {coin!r}, which tickwatch cannot map to a {venue} market; "
            f"use one of {', '.join(TICKERS)} or CRYPTO_SOURCE=coingecko"
        ) from None
