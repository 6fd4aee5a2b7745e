"""Vectorised sums against math.fsum itself, on values chosen to trip naive summation."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tickwatch.engine.exactsum import fsum_first_axis, segment_fsum

finite = st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False)
nasty = st.sampled_from([0.1, 0.2, 0.3, 1e-16, 1.0, 1e16, -1e16, 2.0**-1074, 3.0, -0.1])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(finite | nasty, min_size=1, max_size=25), min_size=1, max_size=8))
def test_rows_sum_like_fsum(rows):
    width = max(len(r) for r in rows)
    matrix = np.zeros((width, len(rows)))
    for j, row in enumerate(rows):
        matrix[: len(row), j] = row
    got = fsum_first_axis(matrix)
    assert got.tolist() == [math.fsum(r) for r in rows]


def test_twenty_equal_values_have_an_exact_mean():
    values = np.full((20, 1), 0.1)
    assert fsum_first_axis(values)[0] == math.fsum([0.1] * 20) == 2.0
    assert float(np.sum(values)) != 2.0  # why a plain sum is not enough


def test_segments_and_a_long_group():
    values = np.array([0.1] * 3 + [1e16, 1.0, -1e16] + [0.1] * 600)
    group = np.array([0] * 3 + [1] * 3 + [2] * 600)
    assert segment_fsum(values, group, 3).tolist() == [
        math.fsum([0.1] * 3),
        math.fsum([1e16, 1.0, -1e16]),
        math.fsum([0.1] * 600),
    ]
