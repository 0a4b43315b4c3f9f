"""`RUN_DIR/report.html`: one self-contained page of a run's curves, sample grids, evaluation,
recipe and component versions.

Training rewrites it after each evaluation and at the end, while files are still being appended
to, so whatever is missing or half-written is left out rather than reported as an error; only a
folder that is not a run directory, or one that cannot be written, is the user's mistake.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from p2pcore.errors import P2PError
from p2pcore.report import charts, page, runlog, sources

REPORT_FILE = "report.html"
RUN_MARKERS = ("recipe.toml", "metrics.jsonl", "checkpoints", "samples")


def collect(run_dir: Path) -> page.RunView:
    """Read everything the page shows from a run directory."""
    log = runlog.read_log(run_dir / "metrics.jsonl")
    return page.RunView(folder=run_dir.resolve().name, log=log, charts=charts.group(log.series),
                        frames=sources.sample_frames(run_dir), evaluations=sources.read_evaluations(run_dir),
                        components=sources.read_components(run_dir), recipe=sources.read_recipe(run_dir))


def write_report(run_dir: Path) -> Path:
    """Write `run_dir/report.html` through a temporary file (a browser never sees half a page) and
    return its path."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise P2PError("no run directory here" if not run_dir.exists() else "this is a file, not a run directory",
                       file=str(run_dir), hint="give the folder `p2p run` wrote (runs/<name>, or its --out)")
    if not any((run_dir / name).exists() for name in RUN_MARKERS):
        raise P2PError("not a run directory: it has no recipe.toml, metrics.jsonl, checkpoints or samples",
                       file=str(run_dir), hint="give the folder `p2p run` wrote (runs/<name>, or its --out)")
    html = page.render(collect(run_dir))
    target = run_dir / REPORT_FILE
    try:
        handle, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{REPORT_FILE}.", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                file.write(html)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise P2PError(f"cannot write the report: {exc.strerror}", file=str(target),
                       hint="make the run directory writable") from None
    return target
