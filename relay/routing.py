"""Channel choice: priority tiers first, weighted random order inside a tier."""

import random
from itertools import groupby

from relay.catalog import ChannelInfo


def attempt_order(
    channels: tuple[ChannelInfo, ...], rng: random.Random | None = None
) -> list[ChannelInfo]:
    """Return `channels` in the order to try them for one request."""
    rng = rng or random
    ordered: list[ChannelInfo] = []
    by_priority = sorted(channels, key=lambda c: -c.priority)
    for _, tier in groupby(by_priority, key=lambda c: c.priority):
        members = list(tier)
        # Weighted sampling without replacement (Efraimidis-Spirakis): each
        # channel leads its tier with probability proportional to its weight.
        members.sort(
            key=lambda c: rng.random() ** (1.0 / max(c.weight, 1)), reverse=True
        )
        ordered.extend(members)
    return ordered
