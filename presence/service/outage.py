"""Log lines for a failure that repeats per request: one when it starts, then a summary."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable


class OutageLog:
    """Logs the first failure of an outage, then at most one summary line per `interval`
    seconds while failures go on (how many, and the last one), instead of a line each.

    An outage is over once no failure came for `interval` seconds: the next one starts a
    new outage and is logged in full again.
    """

    def __init__(self, logger: logging.Logger, what: str, interval: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.logger = logger
        self.what = what
        self.interval = interval
        self.clock = clock
        self.unlogged = 0  # failures since the last line
        self._last_failure = self._last_line = float("-inf")

    def failed(self, detail: str) -> None:
        """Count one failure; logs it when it starts an outage or a summary is due."""
        now = self.clock()
        if now - self._last_failure >= self.interval:
            self.logger.warning(
                "%s: %s (until it ends, one summary line per %gs)", self.what, detail, self.interval
            )
            self.unlogged, self._last_line = 0, now
        else:
            self.unlogged += 1
            if now - self._last_line >= self.interval:
                self.logger.warning(
                    "%s: %d more in the last %.0fs, the last: %s",
                    self.what,
                    self.unlogged,
                    now - self._last_line,
                    detail,
                )
                self.unlogged, self._last_line = 0, now
        self._last_failure = now
