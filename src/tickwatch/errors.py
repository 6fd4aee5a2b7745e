"""Every error tickwatch raises on purpose.

    TickwatchError
     ├── ConfigError        a setting is missing or invalid; names the variable
     ├── InvalidTick        one input record cannot become a Tick; carries the reason
     ├── SourceError        a market data source failed (network, rate limit, bad body)
     │    └── RateLimited   the API refused for rate or quota reasons; says how long to wait
     ├── StoreError         a store cannot be opened or written
     ├── CheckFailed        an operations check failed; carries its result
     └── RestartError       a restart action could not bring a service back

Messages name the input, the problem and the fix.
"""

from __future__ import annotations


class TickwatchError(Exception):
    """Base of all tickwatch errors."""


class ConfigError(TickwatchError):
    """A setting is missing or invalid."""


class InvalidTick(TickwatchError):
    """A record was rejected; `reason` is short and stable enough to group by."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class SourceError(TickwatchError):
    """A market data source failed."""


class RateLimited(SourceError):
    """The API refused because of a rate limit or spent quota.

    `retry_after` is the wait in seconds the API asked for or the budget implies, None when
    unknown (the caller backs off on its own).
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(TickwatchError):
    """A store cannot be opened or written."""


class CheckFailed(TickwatchError):
    """An operations check failed; `result` is its structured result (see tickwatch.ops)."""

    def __init__(self, message: str, result: dict[str, object]) -> None:
        super().__init__(message)
        self.result = result


class RestartError(TickwatchError):
    """A restart action could not bring a service back (no command, launcher or API error)."""
