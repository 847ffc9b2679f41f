"""Audiences said out loud: a live strategy whose audience matches no one, or shrinks sharply."""

import datetime as dt

from lifeloop.strategy.audiences import audience_warnings
from tests.unit.strategy_factories import D, config, strategy

LIVE, OFF, OVER = strategy("live"), strategy("off", enabled=False), strategy("over", end=dt.date(2024, 6, 1))


def test_a_live_strategy_matching_no_one_is_a_warning_but_a_disabled_or_ended_one_is_not():
    found = audience_warnings(config(LIVE, OFF, OVER), D, {}, None, None, 0.5)
    assert found == [f"strategy live: its audience matches no one on {D} (rule: true)"]


def test_a_shrink_beyond_the_configured_share_is_a_warning_and_one_within_it_is_not():
    before, day = {"live/w1": 200}, D - dt.timedelta(days=1)
    # 200 -> 90 is -55%: above the 50% threshold
    assert audience_warnings(config(LIVE), D, {"live/w1": 90}, before, day, 0.5) == [
        f"strategy live: its audience shrank from 200 on {day} to 90 (-55%; warning above -50%)"]
    # 200 -> 100 is exactly -50%: not above it
    assert audience_warnings(config(LIVE), D, {"live/w1": 100}, before, day, 0.5) == []
    # growth is never a warning
    assert audience_warnings(config(LIVE), D, {"live/w1": 500}, before, day, 0.5) == []
