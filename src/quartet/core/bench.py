"""A/B benchmarking on noisy machines: interleave the arms, repeat, report median times and ratios.

Timing each arm in its own block lets background load bias one arm; interleaving (A B A B ...) exposes all arms to
the same noise, and medians discard outliers. Ratios are always against a baseline measured in the same run.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class BenchResult:
    """Per-arm timings (seconds) and derived medians."""

    times: dict[str, list[float]] = field(default_factory=dict)
    work: dict[str, float] = field(default_factory=dict)

    def median(self, arm: str) -> float:
        return statistics.median(self.times[arm])

    def throughput(self, arm: str) -> float:
        """Work units per second for ``arm`` (work defaults to 1 per call)."""
        return self.work.get(arm, 1.0) / self.median(arm)

    def ratio(self, arm: str, baseline: str) -> float:
        """How many times faster ``arm`` is than ``baseline`` in throughput (>1: ``arm`` is faster)."""
        return self.throughput(arm) / self.throughput(baseline)

    def table(self, baseline: str | None = None, unit: str = "items") -> str:
        rows = [f"{'arm':<28}{'median s':>12}{unit + '/s':>16}" + (f"{'x ' + baseline:>16}" if baseline else "")]
        for arm in self.times:
            line = f"{arm:<28}{self.median(arm):>12.4f}{self.throughput(arm):>16.2f}"
            if baseline:
                line += f"{self.ratio(arm, baseline):>16.3f}"
            rows.append(line)
        return "\n".join(rows)


def interleaved(arms: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1,
                work: dict[str, float] | None = None, sync: Callable[[], None] | None = None) -> BenchResult:
    """Run every arm ``warmup`` times untimed, then ``repeats`` rounds of each arm in rotating order.

    ``work`` gives units of work per call (samples, tokens) so throughputs are comparable between arms that do
    different amounts of work per call; ``sync`` is called before reading the clock (e.g. CUDA synchronize)."""
    res = BenchResult(times={k: [] for k in arms}, work=dict(work or {}))
    names = list(arms)
    for _ in range(warmup):
        for k in names:
            arms[k]()
    for r in range(repeats):
        order = names[r % len(names):] + names[: r % len(names)]
        for k in order:
            if sync:
                sync()
            t0 = time.perf_counter()
            arms[k]()
            if sync:
                sync()
            res.times[k].append(time.perf_counter() - t0)
    return res
