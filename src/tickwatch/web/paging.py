"""Keyset cursors for the list endpoints.

Rows arrive while a client pages (new windows, new anomalies), so an offset shifts: a row
inserted before the offset pushes one row onto the next page twice. A cursor names the sort key
of the last row sent instead, and the next page starts strictly after it, so every row is sent
once. The cursor is opaque to clients: URL-safe base64 of a JSON list (times as ISO text).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

import orjson

MAX_CURSOR = 2048  # characters; a real cursor is ~100


class BadCursor(ValueError):
    """A cursor this server did not hand out."""


def encode(*key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode(cursor: str, kinds: tuple[type, ...]) -> list[Any]:
    """The key in `cursor`, checked against `kinds` (datetime, str, float per position)."""
    if len(cursor) > MAX_CURSOR:
        raise BadCursor("cursor too long: pass back the next_cursor of the previous page")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise BadCursor("cursor is not one this API handed out: use next_cursor") from None
    if not isinstance(values, list) or len(values) != len(kinds):
        raise BadCursor("cursor is not one this API handed out: use next_cursor")
    key: list[Any] = []
    for value, kind in zip(values, kinds, strict=True):
        try:
            if kind is datetime:
                moment = datetime.fromisoformat(value)
                if moment.tzinfo is None:
                    raise ValueError
                key.append(moment)
            elif kind is float and isinstance(value, int | float) and not isinstance(value, bool):
                key.append(float(value))
            elif kind is str and isinstance(value, str):
                key.append(value)
            else:
                raise ValueError
        except (TypeError, ValueError):
            raise BadCursor("cursor is not one this API handed out: use next_cursor") from None
    return key
