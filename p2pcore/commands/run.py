"""`p2p run RECIPE`: train as a recipe describes, or continue a run with --resume; `--nproc N` starts the same
command in N processes for data-parallel training and looks after them (`_launch`). Torch is imported inside."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from p2pcore.commands import common
from p2pcore.commands.common import SetOption, console, errors, plain, render_error
from p2pcore.errors import P2PError
from p2pcore.rundir import RunDir, resume_changes

if TYPE_CHECKING:
    import subprocess

    from p2pcore.plugins import Host
    from p2pcore.recipe import Recipe

LAUNCHER = "P2P_LAUNCHER_PID"  # in the environment of the processes `p2p run --nproc` starts: their launcher
PEER_LOST = 3  # the exit code of a process that stopped because another process of its run ended first
# what a launcher passes on of the signals it gets: a closed terminal (SIGHUP) stops training as SIGTERM does
FORWARDED = {signal.SIGINT: signal.SIGINT, signal.SIGTERM: signal.SIGTERM}
if hasattr(signal, "SIGHUP"):
    FORWARDED[signal.SIGHUP] = signal.SIGTERM
STOP_GRACE_S = 30  # after a process ended badly: how long the others may take to stop before they are killed
_LAUNCHER_ENDING: list[bool] = []  # in a launched process: holds True once the kernel said its launcher is ending


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(recipe: Annotated[Path | None, typer.Argument(help="recipe TOML file (with --resume: optional, "
                                                       "the run's own recipe is used)")] = None,
        set_: SetOption = None,
        out: Annotated[Path | None, typer.Option(help="run directory (default runs/<recipe name>)")] = None,
        resume: Annotated[bool, typer.Option(help="continue the run in --out from its latest checkpoint")] = False,
        from_: Annotated[Path | None, typer.Option("--from", help="with --resume: continue from this checkpoint of "
                                                   "the run (epoch_NNN or best); its later ones are kept")] = None,
        quiet: Annotated[bool, typer.Option(help="no progress bar")] = False,
        nproc: Annotated[int, typer.Option(min=1, help="processes on this machine (one per GPU) for "
                                                       "data-parallel training")] = 1) -> None:
    """Train a model as a recipe describes, or continue a run with --resume.

    Example:
    p2p run recipes/quickstart.toml
    p2p run --resume --out runs/quickstart
    p2p run --resume --out runs/quickstart --from runs/quickstart/checkpoints/epoch_005.safetensors
    """
    from p2pcore.engine.build.memory import check_recipe_memory
    from p2pcore.engine.build.placement import launched_rank
    from p2pcore.progress import end_of_run, train_with_progress

    if recipe is None and not (resume and out):
        raise P2PError("give a recipe, or --resume --out RUN_DIR to continue a run", key="RECIPE",
                       hint="p2p run recipes/quickstart.toml")
    if from_ is not None and not resume:
        raise P2PError("--from names the checkpoint a resumed run continues from", key="--from",
                       hint="add --resume --out RUN_DIR, or start a new run from it with [init] checkpoint")
    host = common.host()
    if nproc > 1:
        args = [str(recipe)] if recipe else []
        args += [f"--set={item}" for item in set_ or []] + (["--out", str(out)] if out else [])
        args += ["--from", str(from_)] if from_ else []
        named = RunDir(out) if out else RunDir.named(common.load_recipe(recipe, set_, host).name or recipe.stem)
        raise typer.Exit(_launch(nproc, args + ["--resume"] * resume + ["--quiet"] * quiet, named))
    _follow_launcher()
    main_process = launched_rank() == 0
    if resume:
        parsed, run_dir = _resumed_recipe(recipe, set_, out, host, from_)
        if from_ is not None and main_process:
            console.print(f"continuing from {plain(_continues_from(run_dir))}")
    else:
        parsed = common.load_recipe(recipe, set_, host)
        run_dir = RunDir(out) if out else RunDir.named(parsed.name or recipe.stem)
        if main_process:
            run_dir.check(resume=False)
    source = str(recipe or run_dir.recipe)
    try:
        check_recipe_memory(parsed, host)  # before anything is allocated
        with run_dir.claim(resume=resume) if main_process else contextlib.nullcontext():
            result = train_with_progress(parsed, host, run_dir, resume=resume, quiet=quiet or not main_process,
                                         console=console)
    except P2PError as error:
        raise error.with_location(file=source) from None
    except KeyboardInterrupt:
        if main_process and not _launcher_alive():  # else the launcher says it, once for all processes
            errors.print(_interrupted(run_dir, launched_world()))
        raise typer.Exit(130) from None
    except Exception as exc:
        if launched_world() > 1 and _lost_peer(exc):  # the launcher names the process that ended first
            cause = re.sub(r"^\[[^]]*\]\s*", "", (str(exc).strip().splitlines() or [""])[0]).split(". ")[0]
            errors.print(f"process {launched_rank()}: stopped, another process of the run ended "
                         f"({plain(cause[:120] or type(exc).__name__)})")
            raise typer.Exit(PEER_LOST) from None
        raise
    if main_process:
        end_of_run(console, run_dir, result)


def launched_world() -> int:
    """The number of processes of this run when a launcher started it, else 1."""
    return int(os.environ.get("WORLD_SIZE", "1"))


class _Launched:
    """The processes `p2p run --nproc` started, looked after until the last has ended.

    Each process finds its rank, the number of processes and the rendezvous (a store the launcher serves) in its
    environment, as PyTorch's launcher would give them; they run in a session of their own, so a terminal's
    Ctrl-C reaches them through the launcher only, and each ends when the launcher ends, however it ends
    (`_follow_launcher`). A signal to the launcher (Ctrl-C, SIGTERM, a closed terminal) is passed on to every
    process, which then stop together at their next log step with a checkpoint; a second one stops them at
    once. A process that ends badly stops the others: they are asked to stop, and killed after STOP_GRACE_S."""

    def __init__(self, nproc: int, run_args: list[str]) -> None:
        self.nproc, self.run_args = nproc, run_args
        self.signals: list[int] = []  # the signals received, in order
        self.workers: list[subprocess.Popen] = []

    def start(self) -> None:
        """Start the processes (none after a signal has come)."""
        import subprocess

        from torch.distributed import TCPStore

        self.store = TCPStore("127.0.0.1", 0, is_master=True, wait_for_workers=False)  # holds its port till the end
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(self.store.port),
               "WORLD_SIZE": str(self.nproc), "LOCAL_WORLD_SIZE": str(self.nproc), "GROUP_RANK": "0",
               "TORCHELASTIC_USE_AGENT_STORE": "True", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
               "TORCH_NCCL_ASYNC_ERROR_HANDLING": os.environ.get("TORCH_NCCL_ASYNC_ERROR_HANDLING", "1"),
               LAUNCHER: str(os.getpid())}
        command = [sys.executable, "-m", "p2pcore", "run", *self.run_args]
        for rank in range(self.nproc):
            if self.signals:
                break
            self.workers.append(subprocess.Popen(command, env={**env, "RANK": str(rank), "LOCAL_RANK": str(rank)},
                                                 start_new_session=True))

    def send(self, sig: int) -> None:
        """Send `sig` to every process still running."""
        for worker in self.workers:
            if worker.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, sig)

    def on_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)
        self.send(FORWARDED[signum] if len(self.signals) == 1 else signal.SIGKILL)

    def wait(self) -> int | None:
        """Wait for every process to end; the rank of the first that ended badly, or None. A process that
        stopped because another ended (PEER_LOST) is never taken for the first."""
        import time

        failed: int | None = None
        deadline = float("inf")
        while any(worker.poll() is None for worker in self.workers):
            if failed is None and (failed := self.first_failure()) is not None and not self.signals:
                self.send(signal.SIGTERM)
                deadline = time.monotonic() + STOP_GRACE_S
            if time.monotonic() > deadline:
                self.send(signal.SIGKILL)
            time.sleep(0.1)
        return failed if failed is not None else self.first_failure()

    def first_failure(self) -> int | None:
        ended = [rank for rank, worker in enumerate(self.workers) if worker.returncode not in (None, 0)]
        return min(ended, key=lambda rank: self.workers[rank].returncode == PEER_LOST) if ended else None


def _launch(nproc: int, run_args: list[str], run_dir: RunDir) -> int:
    """Run `p2p run RUN_ARGS` in `nproc` processes on this machine (see `_Launched`); the exit code, and one
    screen on how the run ended when it did not finish."""
    launched = _Launched(nproc, run_args)
    previous = {sig: signal.signal(sig, launched.on_signal) for sig in FORWARDED}  # before the processes start
    try:
        launched.start()
        failed = launched.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if launched.signals:
        errors.print(_interrupted(run_dir, nproc, at_once=len(launched.signals) > 1))
        return 128 + launched.signals[0]
    if failed is None:
        return 0
    code = launched.workers[failed].returncode
    if code == 2:  # a P2PError, which the processes have printed
        return 2
    render_error(P2PError(f"process {failed} of {nproc} {_ended(code)}; the run stopped",
                          details=[_latest(run_dir)], hint=f"continue with {_resume_line(run_dir, nproc)}"))
    return 1


def _ended(code: int) -> str:
    """How a process ended, from its exit code: killed by a signal, stopped for another's end, or failed."""
    if code < 0:
        try:
            return f"was killed ({signal.Signals(-code).name})"
        except ValueError:
            return f"was killed (signal {-code})"
    if code == PEER_LOST:
        return "lost contact with the others"
    return f"failed (exit code {code}; its error is above)"


def _latest(run_dir: RunDir) -> str:
    """Where the run's latest checkpoint is and its step, or that there is none yet."""
    if not run_dir.latest.exists():
        return "no checkpoint was written yet: nothing to resume; run the same command again to start over"
    from p2pcore.checkpoint.format import read_header

    try:
        step = f" (step {read_header(run_dir.latest).meta.step})"
    except (P2PError, OSError):
        step = ""
    return f"the latest checkpoint{step} is intact: {run_dir.latest}"


def _resume_line(run_dir: RunDir, nproc: int) -> str:
    import shlex

    return f"p2p run --resume --out {shlex.quote(str(run_dir.path))}" + (f" --nproc {nproc}" if nproc > 1 else "")


def _interrupted(run_dir: RunDir, nproc: int, *, at_once: bool = False) -> str:
    """The line a run that was interrupted ends with: where its latest checkpoint is, and how to continue."""
    how = "stopped at once" if at_once else "interrupted"
    if not run_dir.latest.exists():
        return (f"{how} before the first checkpoint was written: nothing to resume; run the same command again to "
                "start over")
    return (f"{how}: the latest checkpoint is in {plain(run_dir.checkpoints)}; continue with "
            f"{plain(_resume_line(run_dir, nproc))}")


def _follow_launcher() -> None:
    """In a process `p2p run --nproc` started: end with the launcher, however it ends, so that no process trains
    on alone, writing checkpoints and holding the run's lock. On Linux the kernel signals the launcher's end
    (SIGUSR1, PR_SET_PDEATHSIG), which becomes one SIGTERM: training stops at the next log step with a
    checkpoint. It signals once for each thread of the launcher that ends, so later ones are ignored (a second
    SIGTERM would stop the process at once). The first signal comes when the thread that started this process
    ends, which only happens as the launcher ends; until its last thread has ended this process's parent is
    still the launcher, so that signal, not the parent's id, is what says the launcher is gone."""
    launcher = os.environ.get(LAUNCHER)
    if not launcher or not sys.platform.startswith("linux"):
        return
    import ctypes

    def launcher_ended(signum: int, frame: object) -> None:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        _LAUNCHER_ENDING.append(True)
        os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGUSR1, launcher_ended)
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGUSR1))  # 1: PR_SET_PDEATHSIG
    if os.getppid() != int(launcher):  # the launcher ended before that took effect
        launcher_ended(signal.SIGUSR1, None)


def _launcher_alive() -> bool:
    """Whether this process was started by `p2p run --nproc`, which is still there to report for it."""
    return not _LAUNCHER_ENDING and os.environ.get(LAUNCHER) == str(os.getppid())


def _lost_peer(error: BaseException) -> bool:
    """Whether a launched process's error is a collective that failed because another process went away (the
    launcher reports which ended first), rather than a fault of its own."""
    import torch.distributed as dist

    if isinstance(error, getattr(dist, "DistError", ())):
        return True
    text = str(error)
    return isinstance(error, RuntimeError) and any(
        mark in text for mark in ("gloo", "NCCL", "Connection reset", "Connection closed", "Broken pipe"))


def _continues_from(run_dir: RunDir) -> str:
    """Where a run resumed with --from continues: the file, its epoch and step (read without torch)."""
    from p2pcore.checkpoint.format import read_header

    chosen = run_dir.resume_from
    meta = read_header(chosen).meta
    return f"{chosen.name} (step {meta.step}, {meta.epoch} epoch(s) done); the log is cut back to that step"


def _resumed_recipe(recipe: Path | None, overrides: list[str] | None, out: Path | None, host: Host,
                    from_: Path | None = None) -> tuple[Recipe, RunDir]:
    """The run's own recipe; a recipe or --set given as well may change only what can change mid-run. The run
    folder's recipe must still describe the checkpoint the run continues from (it may have been edited)."""
    from p2pcore.checkpoint.resume_point import check_recipe_matches, check_resumable

    renamed = [item for item in overrides or [] if item.split("=", 1)[0].strip().strip("'\"") == "name"]
    if renamed:
        raise P2PError("a resumed run keeps its name: --set name=... starts another run", key="name",
                       details=[f"--set {renamed[0]}"],
                       hint="drop --set name to continue the run; to train under another name, start a new run "
                            "(without --resume) with its own --out")
    if out is None:
        first = common.load_recipe(recipe, None, host)
        out = RunDir.named(first.name or recipe.stem).path
    run_dir = RunDir(out)
    run_dir.check(resume=True)
    if from_ is not None:
        run_dir.resume_from = run_dir.own_checkpoint(from_)
        check_resumable(run_dir.resume_from)
    recorded = common.load_recipe(run_dir.recipe, None, host)
    check_recipe_matches(run_dir, recorded, host)
    if recipe is None and not overrides:
        return recorded, run_dir
    given = common.load_recipe(recipe or run_dir.recipe, overrides, host)
    resume_changes(recorded.to_toml_dict(), given.to_toml_dict())
    return given.model_copy(update={"name": recorded.name}), run_dir
