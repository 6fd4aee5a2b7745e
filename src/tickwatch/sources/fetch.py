"""One HTTP GET returning JSON: a timeout on every request, retries with backoff, clear errors.

What each outcome becomes:

| response | result |
| --- | --- |
| 200 with a JSON body | the decoded body |
| timeout, connection error, HTTP 5xx | retried; `SourceError` once the attempts are spent |
| HTTP 429 with `Retry-After` <= `max_backoff` | retried after exactly that wait |
| HTTP 429 without `Retry-After` | retried with backoff; `RateLimited` once spent |
| HTTP 429 with a longer `Retry-After` | `RateLimited(retry_after)` at once: the caller pauses |
| other HTTP 4xx, malformed JSON | `SourceError` at once (retrying cannot help) |

Backoff is tenacity's `wait_exponential_jitter`: attempt n waits `initial * 2**(n-1)` plus a
uniform jitter of up to `initial` seconds, capped at `max_backoff`, so retries never form a
tight loop and clients that failed together do not retry together. Every wait is
`stop.wait(...)`, so a stop request ends it at once (`Stopped`), and a test that passes an
event whose `wait` advances a fake clock runs without sleeping. `on_request` is called before
every attempt, which is how a call budget counts retries too.

An error body may echo the request back, key included (an API that quotes the bad URL). The
values of secret-looking parameters and headers (`apikey`, `x-cg-demo-api-key`, tokens,
passwords) are masked in every message BEFORE it is cut to length: cut first, and a key that
straddles the cut is no longer whole, so later masking misses the half that shows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from tickwatch.errors import RateLimited, SourceError

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, query string included, and the Alpha Vantage key travels
# in the query string: keep httpx's own log to warnings so the key never reaches a log.
logging.getLogger("httpx").setLevel(logging.WARNING)


class Stopped(Exception):
    """The stop event was set while waiting; the source should return."""


class _Transient(SourceError):
    def __init__(self, message: str, retry_after: float | None = None, limited: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.limited = limited


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds: either delay-seconds or an HTTP-date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        return None
    return max((moment - now).total_seconds(), 0.0)


class Fetcher:
    def __init__(
        self,
        client: httpx.Client,
        clock: Callable[[], datetime],
        attempts: int = 3,
        initial_backoff: float = 1.0,
        max_backoff: float = 60.0,
        on_request: Callable[[], None] | None = None,
    ) -> None:
        self.client = client
        self.clock = clock
        self.attempts = attempts
        self.max_backoff = max_backoff
        self.on_request = on_request
        self._backoff = wait_exponential_jitter(
            initial=initial_backoff, max=max_backoff, jitter=initial_backoff
        )

    def get_json(
        self,
        url: str,
        stop: threading.Event,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        def sleep(seconds: float) -> None:
            if stop.wait(seconds):
                raise Stopped

        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=self._wait,
            retry=retry_if_exception_type(_Transient),
            sleep=sleep,
            before_sleep=lambda state: _log_retry(url, state),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._once(url, params, headers)
        except _Transient as exc:
            if exc.limited:
                raise RateLimited(str(exc), exc.retry_after) from None
            raise SourceError(str(exc)) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient) and error.retry_after is not None:
            return error.retry_after
        return float(self._backoff(state))

    def _once(
        self, url: str, params: Mapping[str, str] | None, headers: Mapping[str, str] | None
    ) -> Any:
        if self.on_request is not None:
            self.on_request()
        where = _safe(url)
        secrets = _secrets(params, headers, self.client.headers)
        try:
            response = self.client.get(url, params=params, headers=headers)
        except httpx.TimeoutException:
            raise _Transient(f"GET {where} timed out") from None
        except httpx.TransportError as exc:
            detail = _masked(f"{type(exc).__name__}: {exc}", secrets, 300)
            raise _Transient(f"GET {where} failed: {detail}") from None
        status = response.status_code
        if status == 429:
            wait = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
            message = f"GET {where}: HTTP 429 Too Many Requests" + (
                f", Retry-After {wait:g}s" if wait is not None else ""
            )
            if wait is not None and wait > self.max_backoff:
                raise RateLimited(message, wait)
            raise _Transient(message, wait, limited=True)
        if status >= 500:
            raise _Transient(f"GET {where}: HTTP {status}")
        if status >= 400:
            raise SourceError(f"GET {where}: HTTP {status}: {_masked(response.text, secrets, 200)}")
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise SourceError(
                f"GET {where}: malformed JSON ({exc.msg}): {_masked(response.text, secrets, 80)!r}"
            ) from None


_SECRET_NAMES = ("key", "token", "secret", "password", "auth")


def _secrets(*pairs: Mapping[str, str] | None) -> list[str]:
    """Values of parameters and headers whose names look secret, longest first."""
    values = {
        value
        for mapping in pairs
        for name, value in (mapping or {}).items()
        if any(word in name.lower() for word in _SECRET_NAMES) and len(value) >= 4
    }
    return sorted(values, key=len, reverse=True)


def _masked(text: str, secrets: list[str], limit: int) -> str:
    """`text` with every secret as ***, THEN cut to `limit` characters."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text[:limit]


def _safe(url: str) -> str:
    """The URL without its query, so keys in query strings never reach a log."""
    return url.split("?", 1)[0]


def _log_retry(url: str, state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    wait = state.next_action.sleep if state.next_action else 0.0
    log.warning(
        "%s; retry %d in %.1fs", error or f"GET {_safe(url)} failed", state.attempt_number, wait
    )
