"""`RUN_DIR/report.html`: one self-contained page of a run's curves, sample grids, evaluation,
recipe and component versions.

Training rewrites it after each evaluation and at the end, while files are still being appended
to, so whatever is missing or half-written is left out rather than reported as an error; only a
folder that is not a run directory, or one that cannot be written, is the user's mistake.
"""

from __future__ import annotations

from pathlib import Path

from p2pcore.atomicfile import write_text_atomically
from p2pcore.errors import P2PError
from p2pcore.plugins import Host
from p2pcore.report import charts, page, runlog, sources
from p2pcore.report.visuals import grid_columns
from p2pcore.rundir import RUN_MARKERS, RunDir


def collect(run: RunDir, host: Host | None = None) -> page.RunView:
    """Read everything the page shows from a run directory (`host`: the installed plugins that name the sample
    grid's columns; loaded once per process when not given)."""
    log = runlog.read_log(run.metrics)
    recipe = sources.read_recipe(run)
    return page.RunView(folder=run.path.resolve().name, log=log, charts=charts.group(log.series),
                        frames=sources.sample_frames(run), evaluations=sources.read_evaluations(run),
                        components=sources.read_components(run), recipe=recipe,
                        columns=grid_columns(recipe.values, host))


def write_report(run_dir: str | Path | RunDir, host: Host | None = None) -> Path:
    """Write `run_dir/report.html` through a temporary file (a browser never sees half a page) and
    return its path."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run.path.is_dir():
        raise P2PError("no run directory here" if not run.path.exists() else "this is a file, not a run directory",
                       file=str(run.path), hint="give the folder `p2p run` wrote (runs/<name>, or its --out)")
    if not run.is_run():
        raise P2PError(f"not a run directory: it has no {', '.join(RUN_MARKERS[:-1])} or {RUN_MARKERS[-1]}",
                       file=str(run.path), hint="give the folder `p2p run` wrote (runs/<name>, or its --out)")
    html = page.render(collect(run, host))
    return write_text_atomically(run.report, html, what="the report", hint="the run's own files are unchanged")
