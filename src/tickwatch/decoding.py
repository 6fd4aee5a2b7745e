"""Records to mappings: the one place raw bytes (a file line, a bus message) become JSON objects.

The live processor and the Spark job both decode before `normalize.parse_tick` validates, so a
malformed line is rejected with the same reason on either engine.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tickwatch.errors import InvalidTick

# an untrusted record as a source yields it: a mapping (API clients) or raw bytes (a file line,
# a bus message)
Record = Mapping[str, Any] | bytes


def decode(record: Record) -> Mapping[str, Any]:
    """Bytes (a line or a bus message) to a mapping; InvalidTick if they are not a JSON object.

    A mapping passes through unchanged (sources that parse themselves hand over dicts).
    """
    if isinstance(record, bytes):
        try:
            value = orjson.loads(record)
        except orjson.JSONDecodeError as exc:
            raise InvalidTick(f"malformed JSON: {exc.msg}") from None
        if not isinstance(value, dict):
            raise InvalidTick(f"JSON value is {type(value).__name__}, expected an object")
        return value
    return record
