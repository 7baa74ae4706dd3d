"""The benchmark's statistics: medians and their 95% intervals, from order
statistics (unit-tested on canned values)."""
import math
import statistics


def middle(values):
    """The median; NaN for a configuration or traffic this run left out."""
    return statistics.median(values) if values else math.nan


def median_interval(values):
    """(low, high): a 95% interval for the median of values, from their order
    statistics: by rank, counted from 1, n/2 - 0.98 sqrt(n) and 1 + n/2 + 0.98
    sqrt(n), rounded (the sign test's ranks, where n is not tiny); all of them
    where they are too few for that; NaN where there are none."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return math.nan, math.nan
    reach = 0.98 * math.sqrt(n)
    low, high = int(n / 2 - reach + 0.5), int(1 + n / 2 + reach + 0.5)
    return ordered[max(low, 1) - 1], ordered[min(high, n) - 1]
