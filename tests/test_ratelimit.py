"""Flood control: the token bucket with the clock passed in."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatroom.server.core.ratelimit import TokenBucket


def paced_times(bucket: TokenBucket, lines: int, start: float = 0.0) -> list[float]:
    """When each of ``lines`` lines is let through by a reader that waits as told."""
    now, times = start, []
    for _ in range(lines):
        while (wait := bucket.delay(now)) > 0:
            now += wait
        times.append(now)
    return times


def test_burst_goes_through_at_once() -> None:
    bucket = TokenBucket(rate=2, burst=5, now=100.0)
    assert [bucket.delay(100.0) for _ in range(5)] == [0.0] * 5
    assert bucket.delay(100.0) == pytest.approx(0.5)


def test_after_the_burst_lines_are_paced_at_the_rate() -> None:
    bucket = TokenBucket(rate=4, burst=3, now=0.0)
    times = paced_times(bucket, 9)
    assert times[:3] == [0.0, 0.0, 0.0]
    assert times[3:] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25, 1.5])


def test_a_refused_call_takes_no_token() -> None:
    bucket = TokenBucket(rate=1, burst=1, now=0.0)
    assert bucket.delay(0.0) == 0.0
    assert bucket.delay(0.0) == pytest.approx(1.0)
    assert bucket.delay(0.0) == pytest.approx(1.0)  # asking again does not make it later
    assert bucket.delay(0.5) == pytest.approx(0.5)
    assert bucket.delay(1.0) == 0.0


def test_delay_reflects_a_partial_refill() -> None:
    bucket = TokenBucket(rate=10, burst=2, now=0.0)
    bucket.delay(0.0)
    bucket.delay(0.0)
    assert bucket.delay(0.03) == pytest.approx(0.07)
    assert bucket.delay(0.1) == 0.0
    assert bucket.delay(0.1) == pytest.approx(0.1)


def test_refill_is_capped_at_the_burst() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert paced_times(bucket, 3) == [0.0, 0.0, 0.0]
    # an hour of silence earns a burst, not 7200 lines
    assert [bucket.delay(3600.0) for _ in range(3)] == [0.0] * 3
    assert bucket.delay(3600.0) == pytest.approx(0.5)


def test_a_fresh_bucket_starts_full_not_fuller() -> None:
    bucket = TokenBucket(rate=1, burst=2, now=50.0)
    assert bucket.delay(60.0) == 0.0
    assert bucket.delay(60.0) == 0.0
    assert bucket.delay(60.0) > 0


def test_waiting_the_given_delay_is_enough_despite_rounding() -> None:
    bucket = TokenBucket(rate=3, burst=1, now=0.0)
    assert bucket.delay(1.0) == 0.0
    now = 1.0 + bucket.delay(1.0)
    # 1/3 s at 3 tokens/s refills 0.9999999999999999 tokens; the leftover wait of 7e-17 s
    # is below the resolution of ``now``, so a caller told to wait again would never pass
    assert bucket.delay(now) == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0, 5), (-1, 5), (5, 0), (5, 0.5)])
def test_bad_settings_are_refused(rate: float, burst: float) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst, now=0.0)


@settings(max_examples=150, deadline=None)
@given(
    rate=st.floats(0.5, 50),
    burst=st.integers(1, 20),
    steps=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(rate=rate, burst=burst, now=0.0)
    now, allowed = 0.0, []
    for step in steps:
        now += step
        wait = bucket.delay(now)
        assert wait >= 0
        if wait == 0:
            allowed.append(now)
        else:
            assert wait <= 1 / rate + 1e-9
            now += wait
            assert bucket.delay(now) == 0.0  # waiting as told is enough, rounding or not
            allowed.append(now)
    # in any window, no more lines than the burst plus what the rate refilled
    for i, start in enumerate(allowed):
        for j in range(i, len(allowed)):
            assert j - i + 1 <= burst + (allowed[j] - start) * rate + 1e-6


def test_a_charge_is_debt_that_later_lines_repay() -> None:
    bucket = TokenBucket(rate=2, burst=3, now=0.0)
    assert bucket.delay(0.0) == 0  # 2 tokens left
    bucket.charge(4, 0.0)  # -2
    assert bucket.delay(0.0) == pytest.approx(1.5)  # (1 - -2) / 2
    assert bucket.delay(1.5) == 0
