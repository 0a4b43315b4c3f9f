"""What a dataset adapter's `check(split, deep=...)` returns: counts, problems that stop training, warnings
that do not. Part of the plugin API (``p2pcore.api.DataReport``): `p2p data check` prints it and training
refuses to start on a report that is not `ok`. Pure Python, so importing the api stays light."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

LINES_PER_KIND = 50  # beyond this, problems of one kind are counted on a single summary line


@dataclass
class DataReport:
    """The result of scanning a dataset split without training.

    `problems` stop training (one line each, naming the file); `warnings` do not. `facts` are
    short descriptions for the report table (e.g. ``"A: ir/" -> "221 files, 1 channel, 8-bit"``).
    """

    adapter: str
    split: str
    root: str = ""
    pairs: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)
    deep: bool = False
    _counts: Counter = field(default_factory=Counter, repr=False)
    _hidden: Counter = field(default_factory=Counter, repr=False)
    _total: int = field(default=0, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem_count(self) -> int:
        """Problems found, those only counted on a summary line included."""
        return self._total

    def problem(self, text: str, kind: str = "") -> None:
        """Add a problem line; after LINES_PER_KIND lines of one `kind`, only count them."""
        self._total += 1
        if kind:
            self._counts[kind] += 1
            if self._counts[kind] > LINES_PER_KIND:
                self._hidden[kind] += 1
                return
        self.problems.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def finish(self) -> DataReport:
        """Append the summary lines of problems that were only counted."""
        for kind, hidden in self._hidden.items():
            self.problems.append(f"... and {hidden} more: {kind}")
        self._hidden.clear()
        return self

    def lines(self) -> list[str]:
        """The report as plain text lines."""
        head = f"{self.adapter} [{self.split}]" + (f" {self.root}" if self.root else "")
        out = [f"{head}: {self.pairs} pair(s), {len(self.problems)} problem(s), {len(self.warnings)} warning(s)"]
        out += [f"  {k}: {v}" for k, v in self.facts.items()]
        out += [f"  problem: {p}" for p in self.problems]
        out += [f"  warning: {w}" for w in self.warnings]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())
