"""Channel choice: priority tiers first, weighted random order inside a tier."""

import itertools
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


# Each process rotates through a channel's keys in turn; across processes the
# turns interleave, which spreads load just as well without coordination.
_turns: dict[int, itertools.count] = {}


def key_rotation(channel: ChannelInfo) -> list[tuple[int | None, str]]:
    """Return the channel's (key id, secret)s, starting with the next in turn."""
    keys = channel.api_keys
    if len(keys) < 2:
        return list(keys)
    start = next(_turns.setdefault(channel.id, itertools.count())) % len(keys)
    return list(keys[start:] + keys[:start])


def backoff(attempt: int, base: float, rng: random.Random | None = None) -> float:
    """Return the pause before retry number `attempt` (1 for the first retry)."""
    if attempt < 1 or base <= 0:
        return 0.0
    # Full jitter: spread retries so failing clients do not move in lockstep.
    return (rng or random).uniform(0, min(base * 2 ** (attempt - 1), 1.0))
