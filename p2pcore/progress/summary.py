"""The end of a finished run in a few lines: where the report is, the best checkpoint (its epoch and the figure
that chose it), the latest, and the command to run next."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from p2pcore.progress.layout import number
from p2pcore.report.sources import read_json_object
from p2pcore.rundir import RunDir


def _best(run_dir: RunDir) -> dict[str, Any] | None:
    """`eval/best.json` when it and `best.safetensors` are there: the figure, its value and epoch."""
    if not run_dir.best.exists():
        return None
    found = read_json_object(run_dir.best_evaluation)
    return {} if found is None else found


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def summary_lines(run_dir: RunDir, *, steps: int, epochs: int) -> list[tuple[str, str]]:
    """(label, text) lines: `done`, `report`, `best` (when the run keeps one), `latest`, `next`."""
    lines = [("done", f"{_plural(epochs, 'epoch')}, {_plural(steps, 'step')} in {run_dir.path}")]
    report = run_dir.report
    lines.append(("report", f"{report} (open it in a browser)" if report.exists() else
                  f"not written: p2p report {_arg(run_dir.path)}"))
    best = _best(run_dir)
    if best is not None:
        chosen = ", ".join(part for part in (
            f"epoch {best['epoch']}" if "epoch" in best else "",
            f"chosen by {best['metric']} {number(best.get('value'))}" if "metric" in best else "") if part)
        lines.append(("best", run_dir.relative(run_dir.best) + (f": {chosen}" if chosen else "")))
    if run_dir.latest.exists():
        lines.append(("latest", f"{run_dir.relative(run_dir.latest)}: epoch {epochs}, step {steps}"))
    use = run_dir.best if best is not None else run_dir.latest
    lines.append(("next", f"p2p translate {_arg(use)} IN_DIR OUT_DIR"))
    return lines


def _arg(path: Path) -> str:
    return shlex.quote(str(path))


def end_of_run(console: Console, run_dir: RunDir, result: Any) -> None:
    """Print the summary of a finished run (`result`: the trainer's, with its steps and epochs) for the
    console's width: a line too long breaks where it says two things (the best checkpoint and the figure that
    chose it; `next:` and its command); a path or a command is never broken by a newline, so one copied from
    the terminal still runs."""
    width = console.width
    for label, text in summary_lines(run_dir, steps=result.steps, epochs=result.epochs):
        if label in ("done", "next"):
            head = Text(f"{label}: ", style="green" if label == "done" else "bold")
            if label == "next" and len(head) + len(text) > width:
                console.print(Text(f"{label}:", style="bold"))
                head = Text("  ")
        else:
            head = Text(f"  {label:<7} ", style="bold")
        first, cut, rest = text.partition(", chosen by ") if label == "best" else (text, "", "")
        if cut and len(head) + len(text) > width:
            console.print(head + Text(first), soft_wrap=True)
            console.print(Text(" " * len(head) + cut.lstrip(", ") + rest), soft_wrap=True)
        else:
            console.print(head + Text(text), soft_wrap=True)
