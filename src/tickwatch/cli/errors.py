"""How a command ends on an error: one line a person reads, one exit code, no traceback.

    exit 2  the command could not start: a setting, an argument, a file or a store it refuses
            (`TickwatchError` anywhere in a command decorated with `@exits_on_error()`)
    exit 1  the work ran but its result is not whole (rows not stored, a check failed):
            the command says so with `with exits_on_error(1): ...` around that step

The line is `error: <message>`, the message being the error's own (errors.py: it names the
input, the problem and the fix), with every configured secret masked and rich markup escaped
(a message may quote a file or a URL with brackets).
"""

from __future__ import annotations

import contextlib
from types import TracebackType
from typing import NoReturn

import typer
from rich.markup import escape

from tickwatch.cli.render import console
from tickwatch.errors import TickwatchError

_secrets: list[str] = []  # set once the settings are read; an error may echo a key back


def mask_in_errors(secrets: list[str]) -> None:
    """Mask these secrets in every error line from now on."""
    _secrets[:] = secrets


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` and end the command with `code`."""
    for secret in _secrets:
        message = message.replace(secret, "***")
    console.print(f"[red]error:[/] {escape(message)}")
    raise typer.Exit(code)


class exits_on_error(contextlib.ContextDecorator):
    """A `TickwatchError` raised inside ends the command by `fail` with `code`."""

    def __init__(self, code: int = 2) -> None:
        self.code = code

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        _trace: TracebackType | None,
    ) -> None:
        if isinstance(exc, TickwatchError):
            fail(str(exc), self.code)
