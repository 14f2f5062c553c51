import random
from collections import Counter

from relay.catalog import ChannelInfo
from relay.routing import attempt_order
from tests import factories


def channel(name, priority=0, weight=1) -> ChannelInfo:
    return factories.channel_info(
        name=name, id=hash(name), priority=priority, weight=weight
    )


def test_higher_priority_tiers_are_always_tried_first():
    channels = (channel("backup", 0), channel("main-a", 10), channel("main-b", 10))
    for seed in range(50):
        order = attempt_order(channels, random.Random(seed))
        assert {c.name for c in order[:2]} == {"main-a", "main-b"}
        assert order[2].name == "backup"


def test_weights_share_the_first_attempt_in_proportion():
    channels = (channel("big", weight=3), channel("small", weight=1))
    rng = random.Random(7)
    leaders = Counter(attempt_order(channels, rng)[0].name for _ in range(4000))
    # Expected 3000 / 1000; five standard deviations is about +-140.
    assert abs(leaders["big"] - 3000) < 140
