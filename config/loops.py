"""
One object per event loop: Redis and HTTP clients are bound to the loop
that made them, and a test run may have several loops in one process.
"""

import asyncio
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    """`make()` once per running event loop; `close()` awaits the object's
    own `close()` (at server shutdown); `forget()` drops them all (tests)."""

    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._found: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._found.get(loop)
        if found is None:
            found = self._found[loop] = self._make()
        return found

    async def close(self) -> None:
        found = self._found.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.close()

    def each(self) -> list[T]:
        """Every loop's object, for a reader outside those loops."""
        return list(self._found.values())

    def forget(self) -> None:
        self._found.clear()
