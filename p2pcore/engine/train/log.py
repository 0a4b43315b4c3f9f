"""metrics.jsonl: one JSON object per logged step or evaluation, appended to across resumes."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class MetricsLog:
    """Use as a context manager around training; `forget_after` before it, when resuming."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None

    def __enter__(self) -> MetricsLog:
        self._file = self.path.open("a", buffering=1)
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def write(self, record: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(record) + "\n")

    def forget_after(self, step: int) -> None:
        """Drop lines of steps a resumed run will do again, so no step is logged twice."""
        if not self.path.exists():
            return
        kept = [line for line in self.path.read_text().splitlines(keepends=True)
                if line.strip() and _step(line) <= step]
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, self.path)


def _step(line: str) -> int:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):  # a line cut short by a crash
        return 1 << 62
