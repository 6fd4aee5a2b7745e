"""tickwatch.decoding and tickwatch.clock: the helpers that moved out of processor.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tickwatch import processor
from tickwatch.clock import utc_now
from tickwatch.decoding import decode
from tickwatch.errors import InvalidTick


def test_bytes_become_the_json_object() -> None:
    assert decode(b'{"symbol": "IBM", "price": 1.5}') == {"symbol": "IBM", "price": 1.5}


def test_a_mapping_passes_through_unchanged() -> None:
    record = {"symbol": "IBM"}
    assert decode(record) is record


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b'{"symbol": ', "malformed JSON"),
        (b"[1, 2]", "JSON value is list, expected an object"),
        (b"3", "JSON value is int, expected an object"),
    ],
)
def test_bytes_that_are_not_an_object_are_invalid(line: bytes, reason: str) -> None:
    with pytest.raises(InvalidTick, match=reason):
        decode(line)


def test_utc_now_is_aware_utc() -> None:
    before = datetime.now(UTC)
    now = utc_now()
    assert now.tzinfo is UTC
    assert before <= now <= datetime.now(UTC)


def test_processor_still_exports_both() -> None:
    """Code written against processor.utc_now / processor.decode keeps working."""
    assert processor.utc_now is utc_now
    assert processor.decode is decode
