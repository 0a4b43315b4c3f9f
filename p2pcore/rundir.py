"""A run directory: every path of a run folder, its one-writer lock and the rules of what `--out` may be
(a fresh run, a resumed one, never a folder of someone else's files). Torch-free, so the command can refuse a
bad `--out` before anything is built."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from p2pcore.atomicfile import TEMP_SUFFIX, create_atomically
from p2pcore.errors import P2PError

LOCK_FILE = ".lock"
MARKER_FILE = ".p2p-run"  # written when p2p makes a folder a run's: only such a folder (or an empty one) is adopted
MARKER_TEXT = "This folder is a p2p run: p2p writes and resumes it here.\n"
RECIPE_FILE = "recipe.toml"
CHECKPOINTS = "checkpoints"
SAMPLES = "samples"
EVAL = "eval"
METRICS_FILE = "metrics.jsonl"
REPORT_FILE = "report.html"
LATEST_FILE = "latest.safetensors"  # the newest checkpoint (at an epoch end, a link to the epoch's file)
BEST_FILE = "best.safetensors"  # the epoch that scored best on `[eval] best`
RUN_ENTRIES = frozenset({LOCK_FILE, MARKER_FILE, RECIPE_FILE, CHECKPOINTS, SAMPLES, METRICS_FILE, EVAL, REPORT_FILE})
RUN_MARKERS = (RECIPE_FILE, METRICS_FILE, CHECKPOINTS, SAMPLES)  # any of them makes a folder a run's
RUNS = Path("runs")  # where a run goes when no --out is given
EPOCH_FILE = re.compile(r"epoch_(\d+)\.([a-z]+)")

# What `--resume` may change: how long to train, how often to log, sample and checkpoint, and the callbacks that
# follow the run. Everything else would make the continued run a different one than its checkpoints describe.
RESUMABLE_KEYS = frozenset({
    "train.epochs", "train.max_steps", "train.log_every", "train.sample_every", "train.sample_count",
    "train.keep_last", "train.keep_every", "train.checkpoint_steps", "train.checkpoint_minutes",
    "train.num_workers", "train.divergence_patience", "train.keep_optimizer",
})
RESUMABLE_TABLES = ("callbacks.",)

_HELD: set[Path] = set()  # run directories whose lock this process holds


class RunDir:
    """One run's folder. Every file a run writes or a tool reads is named here, and nowhere else:

    ``recipe.toml``, ``metrics.jsonl``, ``report.html``, ``.lock``, ``checkpoints/`` (``latest``, ``best``,
    ``epoch_NNN``), ``samples/epoch_NNN.png`` and ``eval/`` (``epoch_NNN.json``, ``best.json``).

    :meth:`claim` checks what the folder may be and takes its lock, once for the object: a command that
    claims it before building a run hands the object on, and the trainer's own claim is then a no-op."""

    def __init__(self, path: str | Path, *, resume_from: str | Path | None = None) -> None:
        self.path = Path(path)
        self._checked: bool | None = None  # the `resume` value the folder was checked for
        # the checkpoint a resume continues from (`p2p run --resume --from`); None: the newest that reads cleanly
        self.resume_from = None if resume_from is None else self.own_checkpoint(resume_from)

    @classmethod
    def named(cls, name: str) -> RunDir:
        """The default folder of a run called `name`: ``runs/<name>``."""
        return cls(RUNS / safe_name(name))

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> RunDir | None:
        """The run a checkpoint file belongs to (it lies in ``RUN/checkpoints/``), or None."""
        folder = Path(checkpoint).resolve().parent
        return cls(folder.parent) if folder.name == CHECKPOINTS else None

    def __fspath__(self) -> str:
        return os.fspath(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- the paths ---------------------------------------------------------------------------------------
    @property
    def recipe(self) -> Path:
        return self.path / RECIPE_FILE

    @property
    def metrics(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def report(self) -> Path:
        return self.path / REPORT_FILE

    @property
    def lock_file(self) -> Path:
        return self.path / LOCK_FILE

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINTS

    @property
    def latest(self) -> Path:
        return self.checkpoints / LATEST_FILE

    @property
    def best(self) -> Path:
        return self.checkpoints / BEST_FILE

    def epoch_checkpoint(self, epoch: int) -> Path:
        return self.checkpoints / _epoch_name(epoch, "safetensors")

    @property
    def samples(self) -> Path:
        return self.path / SAMPLES

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / _epoch_name(epoch, "png")

    @property
    def evaluations(self) -> Path:
        return self.path / EVAL

    def evaluation(self, epoch: int) -> Path:
        return self.evaluations / _epoch_name(epoch, "json")

    @property
    def best_evaluation(self) -> Path:
        """``eval/best.json``: the figure that selects ``best.safetensors``, its value and epoch."""
        return self.evaluations / "best.json"

    def relative(self, path: Path) -> str:
        """`path` as the run folder's own files name it (``samples/epoch_001.png``), for links in the report."""
        return path.relative_to(self.path).as_posix()

    # -- files by epoch ----------------------------------------------------------------------------------
    def epoch_checkpoints(self) -> dict[int, Path]:
        """``checkpoints/epoch_NNN.safetensors`` files by epoch, oldest first."""
        return epoch_files(self.checkpoints, "safetensors")

    def sample_grids(self) -> dict[int, Path]:
        """``samples/epoch_NNN.png`` files by epoch, oldest first."""
        return epoch_files(self.samples, "png")

    def epoch_evaluations(self) -> dict[int, Path]:
        """``eval/epoch_NNN.json`` files by epoch, oldest first."""
        return epoch_files(self.evaluations, "json")

    def own_checkpoint(self, checkpoint: str | Path) -> Path:
        """`checkpoint` as a file of this run's ``checkpoints/`` (any of them: ``epoch_NNN``, ``best``,
        ``latest``); a file of another folder is refused, since continuing a run means continuing its log."""
        path = Path(checkpoint)
        if not path.is_file():
            raise P2PError(f"no checkpoint file {path}", file=str(path), key="--from",
                           hint=f"name a file of {self.checkpoints}, e.g. {_epoch_name(1, 'safetensors')}")
        if path.resolve().parent != self.checkpoints.resolve():
            raise P2PError(f"{path} is not a checkpoint of the run in {self.path}", file=str(path), key="--from",
                           hint="to start a new run from another run's checkpoint, set [init] checkpoint = "
                                "\"PATH\" (and optimizer = true to carry its optimiser state) in a recipe")
        return self.checkpoints / path.name

    def leftovers(self) -> list[Path]:
        """Temporary checkpoint files of a write cut short by a crash."""
        return sorted(self.checkpoints.glob(".*.tmp")) if self.checkpoints.is_dir() else []

    def is_run(self) -> bool:
        """Whether the folder holds anything a run writes (a run just started, or one long finished)."""
        return any((self.path / name).exists() for name in RUN_MARKERS)

    def has_checkpoint(self) -> bool:
        """Whether any checkpoint was written (temporary files of a cut-short write aside)."""
        try:
            return any(entry.suffix == ".safetensors" and not entry.name.startswith(".")
                       for entry in self.checkpoints.iterdir())
        except OSError:
            return False

    def mark(self) -> None:
        """Write the marker that makes the folder a run p2p may adopt again (created exclusively, so a link
        planted under its name is never followed); a marker already there stays."""
        create_atomically(self.path / MARKER_FILE, MARKER_TEXT.encode(), what="the run directory's marker",
                          hint="choose a writable --out")

    def clear_unfinished(self) -> None:
        """Remove what a run wrote before its first checkpoint (its log, sample grids, evaluations, report and
        cut-short checkpoint writes), so that it starts again in place. Only p2p's own file names are touched;
        the recipe stays (a new start writes it again)."""
        unfinished = [self.metrics, *self._metrics_temporaries(), self.report, self.best_evaluation,
                      *self.sample_grids().values(), *self.epoch_evaluations().values(), *self.leftovers()]
        for path in unfinished:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        for folder in (self.samples, self.evaluations, self.checkpoints):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when nothing else is in it

    def _metrics_temporaries(self) -> list[Path]:
        """The metrics log's temporary files of a rewrite cut short (:mod:`p2pcore.atomicfile` names them
        ``.metrics.jsonl.<random>.tmp``), and the fixed name older versions of p2p used."""
        return [self.path / f".{METRICS_FILE}{TEMP_SUFFIX}",
                *sorted(self.path.glob(f".{METRICS_FILE}.*{TEMP_SUFFIX}"))]

    # -- the rules and the lock --------------------------------------------------------------------------
    def check(self, *, resume: bool) -> None:
        """The folder must be missing, empty, or a run p2p made (it holds the marker): nothing of the user's is
        ever overwritten. A new run may start again in place in a run that stopped before its first
        checkpoint; `resume` needs a run with a recipe and a checkpoint. Checked once per object and mode."""
        if self._checked is resume:
            return
        out = self.path
        if out.exists() and not out.is_dir():
            raise P2PError("the run directory is a file", file=str(out), hint="give --out a folder (it is created "
                                                                              "if missing)")
        check_writable(out, hint="give --out a writable folder path")
        entries = set(os.listdir(out)) if out.is_dir() else set()
        marked = MARKER_FILE in entries
        # a run written before p2p marked its folders: its recipe, and its checkpoints or log
        legacy = not marked and RECIPE_FILE in entries and bool(entries & {CHECKPOINTS, METRICS_FILE})
        if resume:
            if RECIPE_FILE not in entries or not (marked or legacy):
                raise P2PError(f"{out} holds no run to resume (no {RECIPE_FILE})", file=str(out),
                               hint="drop --resume to start a new run, or point --out at an existing run")
            if marked and not self.has_checkpoint():
                self._check_unlocked()
                raise P2PError(f"nothing to resume in {out}: its run stopped before writing its first checkpoint",
                               file=str(out), hint=f"start it again in the same folder: {self.restart_line()}")
        elif entries - {LOCK_FILE}:
            foreign = sorted(entries - RUN_ENTRIES if marked else entries - {LOCK_FILE})
            if legacy or (marked and self.has_checkpoint()):
                raise P2PError(f"{out} already holds a run", file=str(out),
                               hint="add --resume to continue it, or choose another --out")
            if foreign:
                shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
                made = "the run's folder holds other files too" if marked else "not a run directory p2p made"
                raise P2PError(f"{out} is a folder of other files ({shown}), {made}", file=str(out),
                               hint="give --out an empty or new folder, e.g. runs/<name>; nothing in this one was "
                                    "changed")
            # a marked run that stopped before its first checkpoint: `claim` starts it again in place
        self._checked = resume

    def restart_line(self) -> str:
        """The command that starts this folder's run again from its own recipe."""
        import shlex

        recipe = shlex.quote(str(self.recipe)) if self.recipe.is_file() else "RECIPE"
        return f"p2p run {recipe} --out {shlex.quote(str(self.path))}"

    def _check_unlocked(self) -> None:
        """Refuse when another process holds the folder's lock (a run still before its first checkpoint)."""
        try:
            fd = os.open(self.lock_file, os.O_RDONLY)
        except OSError:
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._busy(fd) from None
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _busy(self, fd: int) -> P2PError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
        return P2PError(f"another p2p run (process {holder}) is writing to {self.path}", file=str(self.path),
                        hint="wait for it to finish or stop it, or choose another --out")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the folder's lock for the life of a run. The operating system releases it when the process
        ends, however it ends, so a killed run never leaves the folder locked; a run that ends removes the
        lock file. Nested use in the process that holds it is a no-op."""
        key = self.path.resolve()
        if key in _HELD:
            yield
            return
        self.path.mkdir(parents=True, exist_ok=True)
        fd = self._locked_file()
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            _HELD.add(key)
            try:
                yield
            finally:
                _HELD.discard(key)
                with contextlib.suppress(OSError):
                    self.lock_file.unlink()  # still holding it: a process that opened it meanwhile starts over
        finally:
            os.close(fd)

    def _locked_file(self) -> int:
        """The lock file, open and locked by this process. A file that a run ending meanwhile removed is left
        for a new one, so two processes never hold two files of the same name."""
        path = self.lock_file
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise P2PError(f"cannot create the run's lock file: {exc.strerror}", file=str(path),
                               hint="choose a writable --out") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                error = self._busy(fd)
                os.close(fd)
                raise error from None
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            opened = os.fstat(fd)
            if current is not None and (current.st_dev, current.st_ino) == (opened.st_dev, opened.st_ino):
                return fd
            os.close(fd)

    @contextlib.contextmanager
    def claim(self, *, resume: bool) -> Iterator[RunDir]:
        """Check the folder for a fresh or a resumed run, then hold its lock and mark it as a run (all at most
        once). A new run in a folder whose run stopped before its first checkpoint clears what that run wrote;
        a new run that ends without a checkpoint (it failed to start, or was stopped early) leaves no output
        behind, and no folder when it made the folder and nothing else is in it."""
        self.check(resume=resume)
        if self.path.resolve() in _HELD:
            yield self
            return
        made = [folder for folder in [self.path, *self.path.parents] if not folder.exists()]  # innermost first
        try:
            with self.lock():
                if not resume:
                    self.clear_unfinished()
                self.mark()
                try:
                    yield self
                finally:
                    if not resume and not self.has_checkpoint():
                        self._unstarted()
        finally:
            for folder in made:
                try:
                    folder.rmdir()  # only when nothing is left in it
                except OSError:
                    break

    def _unstarted(self) -> None:
        """After a new run that wrote no checkpoint: its outputs go, and the marker too when nothing but the
        lock is left (a recipe that was written keeps the folder a run that can start again in place)."""
        self.clear_unfinished()
        with contextlib.suppress(OSError):
            if set(os.listdir(self.path)) <= {MARKER_FILE, LOCK_FILE}:
                (self.path / MARKER_FILE).unlink()


def _epoch_name(epoch: int, suffix: str) -> str:
    return f"epoch_{epoch:03d}.{suffix}"


def epoch_files(folder: Path, suffix: str) -> dict[int, Path]:
    """``epoch_NNN.<suffix>`` files of a folder by epoch, oldest first; nothing when the folder is missing."""
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return {}
    found = {}
    for name in names:
        match = EPOCH_FILE.fullmatch(name)
        if match and match.group(2) == suffix:
            found[int(match.group(1))] = folder / name
    return dict(sorted(found.items()))


def safe_name(name: str, *, key: str = "name") -> str:
    """A run name is one path component: runs never land outside runs/."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise P2PError(f"the run name {name!r} is not a single folder name", key=key,
                       hint="use letters, digits, - and _; choose the folder itself with --out")
    return name


def check_writable(path: Path, *, hint: str) -> None:
    """The nearest existing folder at or above `path` must be a folder this process can write into:
    checked before any work, so nothing is computed that cannot be saved."""
    existing = next((p for p in [path, *path.parents] if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise P2PError(f"{existing} is a file, so {path} cannot be created", file=str(path), hint=hint)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise P2PError(f"cannot write into {existing}", file=str(path), hint=hint)


def check_run_dir(out: str | Path, *, resume: bool) -> None:
    """:meth:`RunDir.check` of the folder `out`."""
    RunDir(out).check(resume=resume)


def exclusive(out: str | Path) -> contextlib.AbstractContextManager[None]:
    """:meth:`RunDir.lock` of the folder `out`."""
    return RunDir(out).lock()


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def may_change_on_resume(key: str) -> bool:
    """Whether a recipe key (dotted) may differ in a resumed run from the run's checkpoints."""
    return key in RESUMABLE_KEYS or key.startswith(RESUMABLE_TABLES)


def resume_changes(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The keys in which `given` (a resolved recipe) differs from the run's recorded one; an error
    listing both values of each key that may not change mid-run."""
    old, new = flatten(recorded), flatten(given)
    differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k != "name")
    refused = [k for k in differing if not may_change_on_resume(k)]
    if refused:
        raise P2PError(f"--resume may not change {len(refused)} key(s) of the run's recipe",
                       key=refused[0], details=[f"{k}: {old.get(k, '(absent)')!r} in the run, "
                                               f"{new.get(k, '(absent)')!r} now" for k in refused],
                       hint="resume without them (`p2p run --resume --out DIR`), or start a new run; "
                            f"a resume may change: {', '.join(sorted(RESUMABLE_KEYS))} and [callbacks]")
    return {k: new.get(k) for k in differing}
