"""Pure statistics shared by aggregation, latency summaries and the report.

Plain numbers in, plain numbers out: no result models, no files. Percentiles interpolate like
numpy's default; the 95 % interval of the mean of a positive quantity is taken on the log
scale (see :func:`summarize`), so it never leaves the positive axis, however few the values;
the Student-t quantile it needs is computed here without SciPy. :func:`ratio_or_none` is the
one "per" of every figure (J per token, W over a window).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def ratio_or_none(value: float | None, denominator: float | None) -> float | None:
    """``value / denominator``; None when either is None or the denominator is 0 (or below).

    A figure per nothing (no tokens, an empty window) is not a number, and an unmeasured
    numerator stays unmeasured.
    """
    if value is None or denominator is None or denominator <= 0:
        return None
    return value / denominator


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    data = sorted(values)
    pos = (len(data) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def percentile_or_none(values: Sequence[float], q: float) -> float | None:
    """:func:`percentile`, or None for no values."""
    return percentile(values, q) if values else None


def mean_or_none(values: Sequence[float]) -> float | None:
    """Arithmetic mean, or None for no values."""
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class Summary:
    """Mean, sample std, 95 % confidence interval of the mean, CV, and n of a sample."""

    mean: float
    std: float
    ci_lower: float | None
    ci_upper: float | None
    cv: float | None
    n: int


def summarize(values: Sequence[float]) -> Summary:
    """Statistics of ``values`` of a positive quantity (n >= 2; sample std with n - 1).

    The interval is the modified Cox interval for the mean of a log-normal sample: with
    ``y = ln x``, mean ``m`` and sample variance ``s2`` of ``y``, it is
    ``exp(m + s2/2 +- t(0.975, n-1) * sqrt(s2/n + s2**2 / (2 (n-1))))``. It is positive by
    construction, wider above the mean than below, and for small spread close to the
    Student-t interval of the raw values. A sample with a value <= 0 has no such interval
    (None): the quantity was not positive, so no number is better than a wrong one.
    """
    n = len(values)
    if n < 2:
        raise ValueError("need at least two values")
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    cv = std / mean if mean != 0 else None
    lower, upper = log_scale_interval(values)
    return Summary(mean, std, lower, upper, cv, n)


def summarize_or_none(values: Sequence[float | None]) -> Summary | None:
    """:func:`summarize`, or None when any value is None (one unmeasured, no statistics)."""
    if any(v is None for v in values):
        return None
    return summarize([v for v in values if v is not None])


def log_scale_interval(values: Sequence[float]) -> tuple[float | None, float | None]:
    """95 % interval of the mean of positive ``values`` on the log scale (see summarize)."""
    n = len(values)
    if n < 2 or any(v <= 0 for v in values):
        return None, None
    logs = [math.log(v) for v in values]
    m = sum(logs) / n
    s2 = sum((y - m) ** 2 for y in logs) / (n - 1)
    half = t_quantile_975(n - 1) * math.sqrt(s2 / n + s2 * s2 / (2 * (n - 1)))
    centre = m + s2 / 2
    return math.exp(centre - half), math.exp(centre + half)


def t_quantile_975(df: int) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (two-sided 95 %).

    Found by bisection on the upper tail, which is half the regularized incomplete beta
    ``I_{df/(df+t^2)}(df/2, 1/2)``; no SciPy needed.
    """
    if df < 1:
        raise ValueError("degrees of freedom must be >= 1")
    lo, hi = 0.0, 1.0e3
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        upper_tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + mid * mid))
        if upper_tail > 0.025:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
        + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta, evaluated with Lentz's method."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result
