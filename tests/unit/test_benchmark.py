"""The overhead benchmark's statistics, on canned ratios."""
import math

from benchmarks.stats import median_interval, middle


def test_the_interval_of_a_median_is_the_sign_tests():
    # ranks (counted from 1) whose binomial tails hold at most 2.5% each:
    # 8th-18th of 25, 6th-15th of 20, 40th-61st of 100
    assert median_interval(range(25, 0, -1)) == (8, 18)
    assert median_interval([x / 10 for x in range(1, 21)]) == (0.6, 1.5)
    assert median_interval(range(1, 101)) == (40, 61)


def test_too_few_rounds_for_an_interval_give_all_of_them():
    assert median_interval([5, 1, 4, 2, 3]) == (1, 5)
    assert median_interval([0.99]) == (0.99, 0.99)


def test_a_configuration_left_out_has_no_median_and_no_interval():
    assert math.isnan(middle([]))
    assert all(math.isnan(end) for end in median_interval([]))
