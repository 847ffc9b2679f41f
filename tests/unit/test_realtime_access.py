"""Service tokens (compared by hash) and the per-source token bucket, with a clock the test moves."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lifeloop.config.events import Source
from lifeloop.realtime.access import RateLimits, authenticate, retry_after, token_hash


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_a_bearer_token_finds_its_source_by_hash_and_nothing_else_does():
    a = Source(name="core", token_sha256=token_hash("tok-a"))
    b = Source(name="app", token_sha256=token_hash("tok-b"))
    assert authenticate("Bearer tok-a", [a, b]) is a
    assert authenticate("bearer tok-b", [a, b]) is b
    for header in (None, "", "Bearer", "Bearer ", "Basic tok-a", "tok-a", "Bearer tok-c", "Bearer " + a.token_sha256):
        assert authenticate(header, [a, b]) is None
    assert token_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"   # FIPS 180-2


def test_the_bucket_allows_the_burst_then_the_rate_and_says_how_long_to_wait():
    clock = Clock()
    limits = RateLimits([Source(name="core", token_sha256="0" * 64, rate_per_second=4, burst=2)], clock)
    assert limits.take("core") == 0 and limits.take("core") == 0
    wait = limits.take("core")
    assert abs(wait - 0.25) < 1e-9 and retry_after(wait) == "1"
    clock.t += 0.25
    assert limits.take("core") == 0
    clock.t += 100   # a long pause refills to the burst, not beyond
    assert [limits.take("core") for _ in range(3)].count(0.0) == 2


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.5, 50), burst=st.integers(1, 20),
       gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=80))
def test_no_window_lets_more_through_than_burst_plus_rate_times_its_length(rate, burst, gaps):
    clock = Clock()
    limits = RateLimits([Source(name="s", token_sha256="0" * 64, rate_per_second=rate, burst=burst)], clock)
    passed = []
    for gap in gaps:
        clock.t += gap
        if limits.take("s") == 0:
            passed.append(clock.t)
    for i, start in enumerate(passed):
        within = [t for t in passed[i:] if t - start <= 1.0]
        assert len(within) <= burst + rate * 1.0 + 1e-6
