"""The latency monitor (LATENCY LATEST/HISTORY/RESET/DOCTOR): spikes of at least
`latency-monitor-threshold` milliseconds, per event, as Redis keeps them.

The store records the events Redis's call() records: `command` and `fast-command`
(commands flagged fast), fed by `Server.run_command`.
"""

from __future__ import annotations

import time
from collections import deque

HISTORY_LEN = 160  # LATENCY_TS_LEN: samples kept per event


class LatencyMonitor:
    """Per event: its samples `[unix seconds, ms]` (one per second, the worst) and its maximum."""

    def __init__(self) -> None:
        self.events: dict[bytes, deque[list[int]]] = {}
        self.worst: dict[bytes, int] = {}

    def add(self, event: bytes, milliseconds: int) -> None:
        now = int(time.time())
        samples = self.events.setdefault(event, deque(maxlen=HISTORY_LEN))
        if samples and samples[-1][0] == now:  # same second: keep the worse one
            samples[-1][1] = max(samples[-1][1], milliseconds)
        else:
            samples.append([now, milliseconds])
        self.worst[event] = max(self.worst.get(event, 0), milliseconds)

    def latest(self) -> list[list]:
        """LATENCY LATEST: [event, time, latest ms, max ms] per event."""
        return [
            [event, samples[-1][0], samples[-1][1], self.worst[event]]
            for event, samples in self.events.items()
        ]

    def history(self, event: bytes) -> list[list[int]]:
        return [list(sample) for sample in self.events.get(event, ())]

    def reset(self, events: list[bytes]) -> int:
        """Forget the named events (all when none is named); how many were forgotten."""
        names = events or list(self.events)
        forgotten = 0
        for name in names:
            if self.events.pop(name, None) is not None:
                self.worst.pop(name, None)
                forgotten += 1
        return forgotten

    def doctor(self) -> str:
        """A short report: per event, its samples, latest and worst (Redis's prose is richer)."""
        if not self.events:
            return NO_SPIKES
        lines = ["Latency spikes observed (latency-monitor-threshold), per event:", ""]
        for number, (event, samples) in enumerate(self.events.items(), 1):
            average = sum(ms for _, ms in samples) // len(samples)
            lines.append(
                f"{number}. {event.decode()}: {len(samples)} latency spikes "
                f"(average {average}ms, worst {self.worst[event]}ms, "
                f"latest {samples[-1][1]}ms at {samples[-1][0]})."
            )
        return "\n".join(lines) + "\n"


NO_SPIKES = (
    "Dave, no latency spike was observed during the lifetime of this Redis instance, not in "
    "the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and "
    "think things over.\n"
)
