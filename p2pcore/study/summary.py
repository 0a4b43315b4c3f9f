"""The fooling rate of a study and its bootstrap confidence interval.

The fooling rate is the fraction of judged trials (practice excluded) in which the generated image
was chosen as real; 50% means people could not tell. Its interval comes from a two-level bootstrap:
participants are resampled, then each drawn participant's trials, so it reflects both how people
differ and how few trials each one saw.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from p2pcore.errors import P2PError
from p2pcore.study.results import SessionResult

RESAMPLES = 10_000
LEVEL = 0.95
METHOD = "percentile bootstrap: participants resampled, then each drawn participant's trials"
_CELLS_PER_CHUNK = 2_000_000  # resamples x participants drawn at once, to bound memory


@dataclass(frozen=True)
class ParticipantRate:
    path: Path
    participant: int
    complete: bool
    trials: int
    fooled: int

    @property
    def rate(self) -> float:
        return self.fooled / self.trials


@dataclass(frozen=True)
class StudySummary:
    participants: tuple[ParticipantRate, ...]
    without_trials: tuple[Path, ...]  # sessions left before their first judged trial
    low: float
    high: float
    resamples: int
    seed: int

    @property
    def trials(self) -> int:
        return sum(p.trials for p in self.participants)

    @property
    def fooled(self) -> int:
        return sum(p.fooled for p in self.participants)

    @property
    def rate(self) -> float:
        return self.fooled / self.trials


def bootstrap_interval(trials: Sequence[int], fooled: Sequence[int], *, resamples: int = RESAMPLES,
                       seed: int = 0, level: float = LEVEL) -> tuple[float, float]:
    """Percentile interval of the pooled fooling rate over participants, then their trials, resampled.

    Redrawing a participant's n trials with replacement gives a binomial count of fooled trials
    with that participant's own rate, so the second level is drawn as one binomial per participant.
    """
    n = np.asarray(trials, dtype=np.int64)
    f = np.asarray(fooled, dtype=np.int64)
    if n.size == 0 or (n <= 0).any() or (f < 0).any() or (f > n).any():
        raise ValueError("each participant needs trials > 0 and 0 <= fooled <= trials")
    rng = np.random.default_rng(seed)
    rates = np.empty(resamples)
    chunk = max(1, _CELLS_PER_CHUNK // n.size)
    for start in range(0, resamples, chunk):
        stop = min(resamples, start + chunk)
        drawn = rng.integers(0, n.size, size=(stop - start, n.size))
        counts = rng.binomial(n[drawn], f[drawn] / n[drawn])
        rates[start:stop] = counts.sum(axis=1) / n[drawn].sum(axis=1)
    tail = (1 - level) / 2
    low, high = np.quantile(rates, [tail, 1 - tail])
    return float(low), float(high)


def summarize(sessions: Sequence[SessionResult], *, resamples: int = RESAMPLES, seed: int = 0) -> StudySummary:
    """Pooled fooling rate, per participant rates and the interval; sessions without judged trials are set aside."""
    rates = tuple(ParticipantRate(s.path, s.participant, s.complete, len(s.judged), sum(a.fooled for a in s.judged))
                  for s in sessions if s.judged)
    empty = tuple(s.path for s in sessions if not s.judged)
    if not rates:
        raise P2PError("no result file has a judged trial: every session stopped during practice",
                       file=str(empty[0]) if empty else None, hint="summarize sessions that went past practice")
    low, high = bootstrap_interval([r.trials for r in rates], [r.fooled for r in rates], resamples=resamples,
                                   seed=seed)
    return StudySummary(rates, empty, low, high, resamples, seed)
