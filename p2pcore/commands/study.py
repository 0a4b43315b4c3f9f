"""`p2p study`: the paper's real-vs-generated perceptual study as a local web page, and its summary.

Nothing here imports torch; the study package is imported inside the command, so `p2p --help` stays fast.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from p2pcore.commands.common import console, plain
from p2pcore.errors import P2PError

if TYPE_CHECKING:
    from p2pcore.study.results import SessionResult
    from p2pcore.study.summary import StudySummary


def register(app: typer.Typer) -> None:
    app.command("study")(study)


def study(paths: Annotated[list[Path], typer.Argument(
              metavar="REAL_DIR FAKE_DIR | RESULTS", show_default=False,
              help="the real and the generated images' folders (paired by file name), or with --summarize the "
                   "result files")],
          summarize: Annotated[bool, typer.Option("--summarize", help="summarize result files: fooling rate, "
                                                  "95% bootstrap interval, per participant rates")] = False,
          port: Annotated[int, typer.Option(min=0, max=65535, help="port on 127.0.0.1 (0: any free one)")] = 0,
          trials: Annotated[int, typer.Option(min=1, help="judged trials per participant")] = 40,
          practice: Annotated[int, typer.Option(min=0, help="practice trials first, with feedback")] = 10,
          seconds: Annotated[float, typer.Option(help="how long each pair is shown")] = 1.0,
          out: Annotated[Path, typer.Option(help="results name: participant N's answers go to <stem>-00N.json "
                                            "beside it (inside it if a folder)")] = Path("results.json"),
          seed: Annotated[int | None, typer.Option(help="seeds the trial orders (default: random, recorded); "
                                                   "with --summarize the bootstrap (default 0)")] = None,
          browser: Annotated[bool, typer.Option("--browser/--no-browser", help="open the page in the default "
                                                "browser")] = True,
          resamples: Annotated[int, typer.Option(min=100, help="bootstrap resamples for --summarize")] = 10_000,
          ) -> None:
    """Real or generated? Run the paper's perceptual study in a browser, or summarize its results.

    Example:
    p2p study photos/ translated/ --trials 40
    p2p study --summarize results-001.json results-002.json
    """
    if summarize:
        _summarize(paths, seed=0 if seed is None else seed, resamples=resamples)
        return
    if len(paths) != 2:
        raise P2PError(f"give two folders, the real images then the generated ones (got {len(paths)} path(s))",
                       key="REAL_DIR FAKE_DIR", hint="p2p study photos/ translated/   or   p2p study --summarize "
                                                      "results-*.json")
    _run(paths[0], paths[1], port=port, trials=trials, practice=practice, seconds=seconds, out=out, seed=seed,
         browser=browser)


def _run(real: Path, fake: Path, *, port: int, trials: int, practice: int, seconds: float, out: Path,
         seed: int | None, browser: bool) -> None:
    import contextlib
    import secrets

    from p2pcore.study.pairs import pair_images, unmatched_note
    from p2pcore.study.server import StudyServer, StudySettings

    pairs = pair_images(real, fake)
    settings = StudySettings(trials=trials, practice=practice, seconds=seconds,
                             seed=secrets.randbelow(2**31) if seed is None else seed)
    server = StudyServer(pairs, settings, out, port=port, on_event=lambda message: console.print(plain(message)))
    console.print(f"{len(pairs.names)} image pairs; {practice} practice and {trials} judged trials per participant, "
                  f"{seconds:g} s each, seed {settings.seed}", highlight=False)
    if note := unmatched_note(pairs):
        console.print(f"[yellow]note[/yellow]: {plain(note)}")
    if len(pairs.names) < practice + trials:
        console.print(f"[yellow]note[/yellow]: {len(pairs.names)} pairs for {practice + trials} trials: "
                      "images repeat once every pair has been shown")
    console.print(f"study at [bold]{server.url}[/bold] (this machine only); answers go to "
                  f"{plain(str(server.out.with_name(server.out.stem + '-NNN' + (server.out.suffix or '.json'))))}"
                  "; Ctrl-C stops", highlight=False)
    if browser and not _open_browser(server.url):
        console.print("no graphical browser here: open the address above in one on this machine")
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is the way to stop; serve() closes the socket
        server.serve()
    started, done = len(server.sessions), len(server.completed)
    console.print(f"stopped: {done} of {started} session(s) complete"
                  + (f"; summarize with p2p study --summarize {plain(str(server.out.parent))}/"
                     f"{plain(server.out.stem)}-*.json" if started else ""), highlight=False)


def _open_browser(url: str) -> bool:
    """Open the page in a graphical browser; never a terminal one, which would take over the server's console."""
    import os
    import sys
    import webbrowser

    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def _summarize(paths: list[Path], *, seed: int, resamples: int) -> None:
    from p2pcore.study.results import read_sessions
    from p2pcore.study.summary import LEVEL, METHOD, summarize

    sessions = read_sessions(paths)
    result = summarize(sessions, resamples=resamples, seed=seed)
    _print_summary(result)
    console.print(f"{LEVEL:.0%} interval: {METHOD} ({result.resamples:,} resamples, seed {result.seed})",
                  highlight=False)
    for warning in _mixed(sessions):
        console.print(f"[yellow]warning[/yellow]: {plain(warning)}")
    if result.without_trials:
        console.print(f"left out, no judged trial: {plain(', '.join(str(p) for p in result.without_trials))}")


def _print_summary(result: StudySummary) -> None:
    console.print("[bold]perceptual study[/bold]: how often the generated image was chosen as real")
    table = Table(show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("participants", str(len(result.participants)))
    table.add_row("judged trials", f"{result.trials} (practice trials excluded)")
    table.add_row("fooling rate", f"{result.rate:.1%} ({result.fooled} of {result.trials})")
    table.add_row("95% interval", f"{result.low:.1%} to {result.high:.1%}")
    console.print(table)
    rows = Table("participant", "file", "trials", "fooled", "rate", "complete")
    for p in result.participants:
        rows.add_row(str(p.participant), plain(str(p.path)), str(p.trials), str(p.fooled), f"{p.rate:.1%}",
                     "yes" if p.complete else "[yellow]no[/yellow]")
    console.print(rows)


def _mixed(sessions: list[SessionResult]) -> list[str]:
    """Files that should not be pooled: other folders or other display settings."""
    warnings = []
    if len({s.folders for s in sessions}) > 1:
        warnings.append("the files compare different image folders; pool only sessions of one study")
    for key in ("seconds", "trials", "practice"):
        values = sorted({str(s.settings.get(key)) for s in sessions})
        if len(values) > 1:
            warnings.append(f"the files were run with different {key}: {', '.join(values)}")
    return warnings
