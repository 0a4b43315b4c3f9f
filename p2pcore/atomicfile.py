"""Writing a file whole or not at all: the one way p2p writes a file.

Every write goes to a temporary file created exclusively (``O_CREAT | O_EXCL``, an unpredictable name) in the
target's own folder, so a link planted there is never followed and the rename stays on one file system; it is
written, flushed, fsynced, given ordinary permissions (``0o666`` less the umask) and renamed over the target.
A reader never sees half a file, a failed write leaves the old target as it was and no temporary file behind,
and an OS error (a full disk, a read-only file system, no permission) becomes a :class:`P2PError` naming
the file. A writer that needs a path rather than bytes (Pillow, an adapter's ``write_output``) gets one
inside a private folder (``mkdtemp``, mode 0700) made beside the target, under the target's own name. A file
that must not replace anything (a study participant's results) is linked to its name only if nothing is there.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from p2pcore.errors import P2PError

TEMP_SUFFIX = ".tmp"
"""What a temporary file's name ends with (``.<target name>.<random>.tmp``), so leftovers of a killed process
can be told from real files."""
TEMP_FOLDER_SUFFIX = ".tmpdir"
"""What a private temporary folder's name ends with."""
_TRIES = 100

_HINTS = {
    errno.ENOSPC: "the disk is full: free some space and try again",
    errno.EDQUOT: "the disk quota is used up: free some space and try again",
    errno.EROFS: "the file system is read-only: write to another folder",
    errno.EACCES: "no permission to write there: fix the folder's permissions or write to another folder",
    errno.EPERM: "no permission to write there: fix the folder's permissions or write to another folder",
}


def write_error(exc: OSError, target: str | Path, *, what: str = "the file", hint: str | None = None) -> P2PError:
    """An OS error while writing `target`, as a one-screen error: the reason, the file, and what to do (the
    errno's advice, then `hint`, which says what was kept)."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    generic = "check the free space and the permissions of the folder" if exc.errno else None  # else an encoder's
    advice = "; ".join(part for part in (_HINTS.get(exc.errno or 0), hint) if part) or generic
    return P2PError(f"cannot write {what}: {reason}", file=str(target), hint=advice)


def write_bytes_atomically(target: str | Path, data: bytes | bytearray | memoryview, *, what: str = "the file",
                           hint: str | None = None) -> Path:
    """Write `data` as `target`, whole or not at all (see the module's docstring); return the target."""
    target = Path(target)
    _write_stream(target, lambda file: file.write(data), what=what, hint=hint)
    return target


def write_text_atomically(target: str | Path, text: str, *, encoding: str = "utf-8", what: str = "the file",
                          hint: str | None = None) -> Path:
    """Write `text` as `target` (UTF-8 unless `encoding` says otherwise), whole or not at all."""
    return write_bytes_atomically(target, text.encode(encoding), what=what, hint=hint)


def write_atomically(target: str | Path, write: Callable[[Path], object], *, what: str = "the file",
                     hint: str | None = None) -> Path:
    """Have `write` write a file at the path it is given (the target's own name, so a format chosen by the
    suffix is the same, in a private folder beside the target), then rename that file over `target`.

    An error `write` raises (a :class:`P2PError` included) passes through once the temporary folder is
    removed; an OS error becomes a P2PError naming `target`."""
    target = Path(target)
    folder: Path | None = None
    try:
        _make_parent(target)
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=TEMP_FOLDER_SUFFIX, dir=target.parent))
        written = folder / target.name
        write(written)
        if written.is_symlink() or not written.is_file():
            raise P2PError(f"writing {what} made no file", file=str(target),
                           hint="the writer must write a regular file at the path it is given")
        fd = os.open(written, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        try:
            os.fchmod(fd, _file_mode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(written, target)
        folder.rmdir()
        folder = None
    except OSError as exc:
        raise write_error(exc, target, what=what, hint=hint) from None
    finally:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
    _fsync_folder(target.parent)
    return target


def link_atomically(source: str | Path, target: str | Path, *, what: str = "the file",
                    hint: str | None = None) -> Path:
    """Make `target` the same file as `source` without writing it again: a hard link where the file system
    has them, else a copy; swapped in atomically either way, and never through a link planted beside it."""
    source, target = Path(source), Path(target)
    tmp: Path | None = None
    try:
        _make_parent(target)
        for _ in range(_TRIES):
            candidate = target.parent / f".{target.name}.{secrets.token_hex(8)}{TEMP_SUFFIX}"
            try:
                os.link(source, candidate)  # fails on anything already at `candidate`, a link included
            except FileExistsError:
                continue
            except OSError:
                break  # no hard link here (file system, limits): a copy instead, whose error says why if any
            tmp = candidate
            break
        else:
            raise FileExistsError(errno.EEXIST, "no free temporary name", str(target))
        if tmp is None:
            with source.open("rb") as original:
                _write_stream(target, lambda file: shutil.copyfileobj(original, file), what=what, hint=hint)
            return target
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise write_error(exc, target, what=what, hint=hint) from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    _fsync_folder(target.parent)
    return target


def check_folder_writable(folder: str | Path, *, what: str = "the output", hint: str | None = None) -> None:
    """Check, before any work, that files can be written in `folder` (or, while it does not exist, in the
    nearest folder above it): a temporary file is created there and removed. Nothing is created otherwise."""
    folder = Path(folder)
    existing = next((p for p in [folder, *folder.parents] if p.exists()), None)
    if existing is None:
        return
    if not existing.is_dir():
        raise P2PError(f"cannot write {what}: {existing} is a file, not a folder", file=str(folder), hint=hint)
    try:
        fd, name = tempfile.mkstemp(prefix=".p2p-write-check.", suffix=TEMP_SUFFIX, dir=existing)
    except OSError as exc:
        raise write_error(exc, folder, what=what, hint=hint) from None
    os.close(fd)
    Path(name).unlink(missing_ok=True)


def create_atomically(target: str | Path, data: bytes | bytearray | memoryview, *, what: str = "the file",
                      hint: str | None = None) -> bool:
    """Write `data` as a new file `target`, whole or not at all, never replacing anything: False (and nothing
    written) when something, a link included, is already there. Two writers racing for one name never
    share it."""
    return _write_stream(Path(target), lambda file: file.write(data), what=what, hint=hint, new=True)


def _write_stream(target: Path, fill: Callable[[BinaryIO], object], *, what: str, hint: str | None,
                  new: bool = False) -> bool:
    """Create the temporary file exclusively beside `target`, let `fill` write it, then fsync, chmod and
    rename it over `target` (with `new`, link it to `target` only if nothing is there: False otherwise); on
    any failure the temporary file is removed."""
    tmp: str | None = None
    try:
        _make_parent(target)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_SUFFIX, dir=target.parent)
        with os.fdopen(fd, "wb") as file:
            fill(file)
            file.flush()
            os.fchmod(file.fileno(), _file_mode())  # mkstemp makes 0600 files; outputs are ordinary files
            os.fsync(file.fileno())
        if new:
            try:
                os.link(tmp, target)  # fails on anything already at `target`
            except FileExistsError:
                return False
        else:
            os.replace(tmp, target)
            tmp = None
    except OSError as exc:
        raise write_error(exc, target, what=what, hint=hint) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    _fsync_folder(target.parent)
    return True


def _make_parent(target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)


def _file_mode() -> int:
    """``0o666`` less the process's umask: the permissions an ordinary ``open(path, "w")`` would give."""
    return 0o666 & ~_umask()


def _umask() -> int:
    """The umask, read from /proc where the system has it (setting it to read it back would, for a moment,
    give files other threads create no umask at all)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable (where the system allows fsync on a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
