"""A run directory: one writer at a time, never a folder of someone else's files, and resumed from
its own recipe. Torch-free, so the command can refuse a bad `--out` before anything is built."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from p2pcore.errors import P2PError

LOCK_FILE = ".lock"
RECIPE_FILE = "recipe.toml"
RUN_ENTRIES = frozenset({LOCK_FILE, RECIPE_FILE, "checkpoints", "samples", "metrics.jsonl", "eval", "report.html"})

# What `--resume` may change: how long to train and how often to log, sample and checkpoint.
# Everything else would make the continued run a different one than its checkpoints describe.
RESUMABLE_KEYS = frozenset({
    "train.epochs", "train.max_steps", "train.log_every", "train.sample_every", "train.sample_count",
    "train.keep_last", "train.keep_every", "train.checkpoint_steps", "train.checkpoint_minutes",
    "train.num_workers", "train.divergence_patience",
})


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


def check_run_dir(out: Path, *, resume: bool) -> None:
    """`--out` must be a folder that is empty, missing, or a p2p run (with --resume, one that has a
    recipe to continue from): nothing of the user's is ever overwritten."""
    if out.exists() and not out.is_dir():
        raise P2PError("the run directory is a file", file=str(out), hint="give --out a folder (it is created if "
                                                                          "missing)")
    check_writable(out, hint="give --out a writable folder path")
    entries = set(os.listdir(out)) if out.is_dir() else set()
    if resume:
        if RECIPE_FILE not in entries:
            raise P2PError(f"{out} holds no run to resume (no {RECIPE_FILE})", file=str(out),
                           hint="drop --resume to start a new run, or point --out at an existing run")
        return
    foreign = sorted(entries - RUN_ENTRIES)
    if foreign:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise P2PError(f"{out} is a folder of other files ({shown}), not a run directory", file=str(out),
                       hint="give --out an empty or new folder, e.g. runs/<name>")
    if entries & {RECIPE_FILE, "checkpoints", "metrics.jsonl"}:
        raise P2PError(f"{out} already holds a run", file=str(out),
                       hint="add --resume to continue it, or choose another --out")


_HELD: set[Path] = set()


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold the run directory's lock for the life of a run. The operating system releases it when
    the process ends, however it ends, so a killed run never leaves the directory locked. Nested
    use in the process that holds it is a no-op."""
    key = out.resolve()
    if key in _HELD:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise P2PError(f"cannot create the run's lock file: {exc.strerror}", file=str(path),
                       hint="choose a writable --out") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "another process"
            raise P2PError(f"another p2p run (process {holder}) is writing to {out}", file=str(out),
                           hint="wait for it to finish or stop it, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)
    finally:
        os.close(fd)


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def resume_changes(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """The keys in which `given` (a resolved recipe) differs from the run's recorded one; an error
    listing both values of each key that may not change mid-run."""
    old, new = flatten(recorded), flatten(given)
    differing = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k) and k != "name")
    refused = [k for k in differing if k not in RESUMABLE_KEYS]
    if refused:
        raise P2PError(f"--resume may not change {len(refused)} key(s) of the run's recipe",
                       key=refused[0], details=[f"{k}: {old.get(k, '(absent)')!r} in the run, "
                                               f"{new.get(k, '(absent)')!r} now" for k in refused],
                       hint="resume without them (`p2p run --resume --out DIR`), or start a new run; "
                            f"a resume may change: {', '.join(sorted(RESUMABLE_KEYS))}")
    return {k: new.get(k) for k in differing}
