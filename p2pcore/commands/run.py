"""`p2p run RECIPE`: train as a recipe describes, or continue a run with --resume; `--nproc N` hands the same
command to PyTorch's launcher. Torch is imported inside."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import SetOption, console, errors, plain
from p2pcore.errors import P2PError
from p2pcore.rundir import RunDir, resume_changes

if TYPE_CHECKING:
    from p2pcore.plugins import Host
    from p2pcore.recipe import Recipe


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(recipe: Annotated[Path | None, typer.Argument(help="recipe TOML file (with --resume: optional, "
                                                       "the run's own recipe is used)")] = None,
        set_: SetOption = None,
        out: Annotated[Path | None, typer.Option(help="run directory (default runs/<recipe name>)")] = None,
        resume: Annotated[bool, typer.Option(help="continue the run in --out from its latest checkpoint")] = False,
        quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
        nproc: Annotated[int, typer.Option(min=1, help="processes on this machine (one per GPU), started by "
                                                       "PyTorch's launcher for data-parallel training")] = 1) -> None:
    """Train a model as a recipe describes, or continue a run with --resume.

    Example:
    p2p run recipes/quickstart.toml
    p2p run --resume --out runs/quickstart
    """
    import contextlib
    import shlex

    from p2pcore.engine.build.placement import launched_rank
    from p2pcore.progress import train_with_progress

    if nproc > 1:
        args = [str(recipe)] if recipe else []
        args += [f"--set={item}" for item in set_ or []] + (["--out", str(out)] if out else [])
        raise typer.Exit(_launch(nproc, args + ["--resume"] * resume + ["--quiet"] * quiet))
    main_process = launched_rank() == 0
    host = common.host()
    if recipe is None and not (resume and out):
        raise P2PError("give a recipe, or --resume --out RUN_DIR to continue a run", key="RECIPE",
                       hint="p2p run recipes/quickstart.toml")
    if resume:
        parsed, run_dir = _resumed_recipe(recipe, set_, out, host)
    else:
        parsed = common.load_recipe(recipe, set_, host)
        run_dir = RunDir(out) if out else RunDir.named(parsed.name or recipe.stem)
        if main_process:
            run_dir.check(resume=False)
    source = str(recipe or run_dir.recipe)
    try:
        with run_dir.lock() if main_process else contextlib.nullcontext():
            result = train_with_progress(parsed, host, run_dir, resume=resume, quiet=quiet or not main_process,
                                         console=console)
    except P2PError as error:
        raise error.with_location(file=source) from None
    except KeyboardInterrupt:
        if not main_process:
            raise typer.Exit(130) from None
        if run_dir.latest.exists():
            errors.print(f"interrupted: the latest checkpoint is in {plain(run_dir.checkpoints)}; continue with "
                         f"p2p run --resume --out {plain(shlex.quote(str(run_dir.path)))}")
        else:
            errors.print("interrupted before the first checkpoint was written: nothing to resume; run the same "
                         "command again to start over")
        raise typer.Exit(130) from None
    summary = ", ".join(f"{k} {v:.4f}" for k, v in sorted(result.metrics.items()))
    if not main_process:
        return
    console.print(f"[green]done[/green]: {result.steps} steps, {result.epochs} epochs -> {plain(run_dir.path)}"
                  + (f" ({plain(summary)})" if summary else ""))


def _launch(nproc: int, run_args: list[str]) -> int:
    """Hand `p2p run` over to PyTorch's launcher with `nproc` processes on this machine; its exit code."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "-m", "p2pcore", "run", *run_args])
    except ChildFailedError as failure:  # each process has printed its own error
        return max((f.exitcode for f in failure.failures.values()), default=1) or 1
    return 0


def _resumed_recipe(recipe: Path | None, overrides: list[str] | None, out: Path | None,
                    host: Host) -> tuple[Recipe, RunDir]:
    """The run's own recipe; a recipe or --set given as well may change only what can change mid-run."""
    if out is None:
        first = common.load_recipe(recipe, None, host)
        run_dir = RunDir.named(first.name or recipe.stem)
    else:
        run_dir = RunDir(out)
    run_dir.check(resume=True)
    recorded = common.load_recipe(run_dir.recipe, None, host)
    if recipe is None and not overrides:
        return recorded, run_dir
    given = common.load_recipe(recipe or run_dir.recipe, overrides, host)
    resume_changes(recorded.to_toml_dict(), given.to_toml_dict())
    return given.model_copy(update={"name": recorded.name}), run_dir
