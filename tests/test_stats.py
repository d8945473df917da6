"""The one "per" of every figure: an unmeasured or per-nothing figure is None, never 0."""

from __future__ import annotations

import pytest

from llem.stats import ratio_or_none, summarize_or_none


def test_ratio_is_none_when_unmeasured_or_per_nothing() -> None:
    assert ratio_or_none(None, 10) is None      # energy unmeasured: no J per token
    assert ratio_or_none(5.0, None) is None     # denominator unknown
    assert ratio_or_none(5.0, 0) is None        # no tokens: nothing per token
    assert ratio_or_none(5.0, -1.0) is None     # a negative window is no window
    assert ratio_or_none(0.0, 4) == 0.0         # a measured zero stays a zero
    assert ratio_or_none(6.0, 3) == pytest.approx(2.0)


def test_statistics_need_every_value_measured() -> None:
    assert summarize_or_none([10.0, None, 12.0]) is None
    summary = summarize_or_none([10.0, 12.0, 14.0])
    assert summary is not None and summary.n == 3 and summary.mean == pytest.approx(12.0)
