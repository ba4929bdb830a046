"""``SimClock``: simulated time that runs ``speed`` times faster than the wall.

Fleet runs and the demo hand one clock to the hub and to every edge agent (their ``clock``
seam), so events are stamped, fused and shown in simulated time, while every timeout,
backoff and resend timer in the real parts keeps running on the monotonic wall clock.
A skewed edge gets ``clock.skewed(offset)``: the same clock, ``offset`` seconds off.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["SimClock"]


class SimClock:
    """``now()`` is ``start`` when ``begin()`` is called, then advances ``speed`` s per wall second.

    Before ``begin`` the clock stands still at ``start``. Instances are callables returning
    ``now()``, so one can be passed wherever a ``clock: Callable[[], float]`` is taken.
    """

    def __init__(self, start: float, *, speed: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, not {speed}")
        self.start = float(start)
        self.speed = float(speed)
        self._monotonic = monotonic
        self._began: float | None = None

    def begin(self) -> None:
        """Start the clock (idempotent)."""
        if self._began is None:
            self._began = self._monotonic()

    @property
    def started(self) -> bool:
        return self._began is not None

    def now(self) -> float:
        if self._began is None:
            return self.start
        return self.start + (self._monotonic() - self._began) * self.speed

    __call__ = now

    def wall_elapsed(self) -> float:
        """Wall seconds since ``begin`` (0 before)."""
        return 0.0 if self._began is None else self._monotonic() - self._began

    def wall_until(self, sim_ts: float) -> float:
        """Wall seconds until the clock reads ``sim_ts`` (0 if it already has)."""
        return max(0.0, (sim_ts - self.now()) / self.speed)

    async def sleep_until(self, sim_ts: float) -> None:
        await asyncio.sleep(self.wall_until(sim_ts))

    def skewed(self, offset_s: float) -> Callable[[], float]:
        """This clock read ``offset_s`` seconds off (an edge whose RTC is wrong)."""
        if offset_s == 0:
            return self.now
        return lambda: self.now() + offset_s
