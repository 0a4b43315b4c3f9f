"""Every file p2p writes is written whole or not at all (p2pcore.atomicfile): the temporary file is created
exclusively beside the target (a link planted at any name is never followed), a failure leaves the old
target and no temporary file, and an OS error (a full disk, a read-only file system) is a one-screen error
naming the file, with exit 2. Tests run as root, where permissions do not stop a write, so OS errors are
made by raising them at the write call."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tomli_w
import torch
from conftest import invoke, trained_checkpoint
from PIL import Image

from p2pcore import atomicfile
from p2pcore.atomicfile import (
    check_folder_writable,
    create_atomically,
    link_atomically,
    write_atomically,
    write_bytes_atomically,
    write_text_atomically,
)
from p2pcore.checkpoint.files import link_checkpoint, read_checkpoint, write_checkpoint
from p2pcore.engine.evaluate.grids import save_grid
from p2pcore.engine.evaluate.scoring import write_json
from p2pcore.engine.train.trainer import Trainer
from p2pcore.errors import P2PError
from p2pcore.recipe import validate_recipe
from p2pcore.records import RecordFile
from p2pcore.report import write_report

ROOT = Path(__file__).resolve().parents[1]
LINUX = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="finds a descriptor's file in /proc")
RECIPE = {"name": "atomic", "data": {"name": "synthetic_thermal", "size": 32, "train_count": 4, "test_count": 1},
          "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8}},
          "loss": {"l1": {"name": "l1"}}, "train": {"epochs": 1, "batch_size": 4, "num_workers": 0}}

# Run in a `p2p` process (through PYTHONPATH): fsync of a file whose path holds P2P_FAULT_PATH raises the
# errno P2P_FAULT_ERRNO names, as a disk that fills while the file is written does.
SITECUSTOMIZE = '''
import errno, os
_fsync, _mark, _code = os.fsync, os.environ["P2P_FAULT_PATH"], getattr(errno, os.environ["P2P_FAULT_ERRNO"])
def _failing(fd):
    try:
        where = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        where = ""
    if _mark in where:
        raise OSError(_code, os.strerror(_code))
    return _fsync(fd)
os.fsync = _failing
'''


@pytest.fixture(scope="module")
def trained(tmp_path_factory, host) -> Path:
    """A finished one-epoch run: checkpoints, a sample grid, the metrics log."""
    out = tmp_path_factory.mktemp("atomic") / "run"
    trained_checkpoint(out, host, size=32, generator=RECIPE["model"]["generator"])
    return out


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders of a write, anywhere under `folder`."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if ".tmp" in p.name)


def plant(folder: Path, names: list[str], victim: Path) -> None:
    """Symbolic links at `names` in `folder`, each pointing at `victim`."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).symlink_to(victim)


def predictable(target: Path) -> list[str]:
    """The temporary names p2p's writers once used: guessable by anyone who can write into the folder."""
    pid = os.getpid()
    return [f".{target.name}.tmp", f".{target.name}.{pid}.tmp", f".{target.stem}.{pid}.tmp{target.suffix}"]


def fail_fsync(monkeypatch: pytest.MonkeyPatch, code: int, where: str = "") -> None:
    """fsync raises `code` for files whose path holds `where` (every file when empty)."""
    real = os.fsync

    def failing(fd: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            path = ""
        if where in path:
            raise OSError(code, os.strerror(code))
        real(fd)

    monkeypatch.setattr(os, "fsync", failing)


def refuse_temporary_files(monkeypatch: pytest.MonkeyPatch, under: Path) -> None:
    """tempfile.mkstemp raises EROFS in folders under `under`, as a read-only file system does."""
    real = tempfile.mkstemp

    def read_only(*args, dir=None, **kwargs):
        if str(dir).startswith(str(under)):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", read_only)


# -- the writer ------------------------------------------------------------------------------------------------

WRITERS: dict[str, Callable[[Path], object]] = {
    "bytes": lambda target: write_bytes_atomically(target, b"new"),
    "text": lambda target: write_text_atomically(target, "new"),
    "path": lambda target: write_atomically(target, lambda path: path.write_bytes(b"new")),
}


@pytest.mark.parametrize("kind", WRITERS)
def test_a_link_at_the_target_or_a_guessed_name_is_replaced_never_followed(kind, tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out = tmp_path / "out"
    target = out / "x.txt"
    plant(out, [*predictable(target), target.name], victim)
    guessed = iter(["planted", "fresh1", "fresh2"])  # the first name is one an attacker guessed right
    plant(out, [f".{target.name}.planted{atomicfile.TEMP_SUFFIX}", f".{target.name}.planted.tmpdir"], victim)
    monkeypatch.setattr(tempfile, "_get_candidate_names", lambda: guessed)
    WRITERS[kind](target)
    assert victim.read_bytes() == b"precious"
    assert not target.is_symlink() and target.read_bytes() == b"new"
    assert all((out / name).is_symlink() for name in predictable(target))  # the planted links are left alone


def test_a_hard_link_never_goes_through_a_planted_link(tmp_path, monkeypatch):
    victim = tmp_path / "victim.bin"
    victim.write_bytes(b"precious")
    source = tmp_path / "epoch_001.safetensors"
    source.write_bytes(b"checkpoint")
    target = tmp_path / "latest.safetensors"
    names = iter(["planted", "fresh"])
    monkeypatch.setattr(atomicfile.secrets, "token_hex", lambda n: next(names))
    plant(tmp_path, [*predictable(target), f".{target.name}.planted.tmp"], victim)
    link_atomically(source, target)
    assert victim.read_bytes() == b"precious" and target.read_bytes() == b"checkpoint"
    assert target.stat().st_ino == source.stat().st_ino  # the same file, not written twice


def test_a_copy_stands_in_where_hard_links_fail(tmp_path, monkeypatch):
    source = tmp_path / "a.bin"
    source.write_bytes(b"data")

    def no_links(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_links)
    link_atomically(source, tmp_path / "b.bin")
    assert (tmp_path / "b.bin").read_bytes() == b"data" and not leftovers(tmp_path)


def test_a_new_file_never_replaces_anything_a_link_included(tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    plant(tmp_path, ["taken"], victim)
    assert not create_atomically(tmp_path / "taken", b"new")
    assert create_atomically(tmp_path / "free", b"new") and not create_atomically(tmp_path / "free", b"other")
    assert victim.read_bytes() == b"precious" and (tmp_path / "free").read_bytes() == b"new"
    fail_fsync(monkeypatch, errno.ENOSPC, str(tmp_path))
    with pytest.raises(P2PError, match="No space left"):
        create_atomically(tmp_path / "full", b"new")
    assert not (tmp_path / "full").exists() and not leftovers(tmp_path)


@pytest.mark.parametrize("kind", WRITERS)
@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_a_failed_write_keeps_the_old_target_and_leaves_nothing(kind, code, tmp_path, monkeypatch):
    target = tmp_path / "x.txt"
    target.write_bytes(b"old")
    fail_fsync(monkeypatch, code, str(tmp_path))
    with pytest.raises(P2PError) as caught:
        WRITERS[kind](target)
    assert caught.value.file == str(target) and os.strerror(code) in caught.value.message
    assert {errno.ENOSPC: "disk is full", errno.EROFS: "read-only", errno.EACCES: "permission"}[code] in \
        caught.value.hint
    assert target.read_bytes() == b"old" and not leftovers(tmp_path)


def test_an_error_of_the_writer_itself_passes_through_and_leaves_nothing(tmp_path):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def broken(path: Path) -> None:
        path.write_bytes(b"half")
        raise ValueError("the encoder failed")

    with pytest.raises(ValueError, match="encoder failed"):
        write_atomically(target, broken)
    with pytest.raises(P2PError, match="made no file"):
        write_atomically(target, lambda path: None)
    assert target.read_bytes() == b"old" and not leftovers(tmp_path)


def test_a_failed_rename_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "x.txt"
    target.write_bytes(b"old")
    source = tmp_path / "source.txt"
    source.write_bytes(b"new")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(os, "replace", read_only)
    for write in (*WRITERS.values(), lambda t: link_atomically(source, t)):
        with pytest.raises(P2PError, match="Read-only file system"):
            write(target)
    assert target.read_bytes() == b"old" and not leftovers(tmp_path)


def test_files_get_ordinary_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        for name, write in WRITERS.items():
            write(tmp_path / name)
            assert (tmp_path / name).stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_a_folder_is_checked_writable_without_leaving_anything(tmp_path, monkeypatch):
    check_folder_writable(tmp_path / "not" / "yet")
    assert not (tmp_path / "not").exists() and not leftovers(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(P2PError, match="is a file"):
        check_folder_writable(tmp_path / "file" / "below")
    refuse_temporary_files(monkeypatch, tmp_path)
    with pytest.raises(P2PError, match="Read-only") as caught:
        check_folder_writable(tmp_path / "out", what="the evaluation")
    assert caught.value.file == str(tmp_path / "out") and "read-only" in caught.value.hint


# -- each writer of p2p ----------------------------------------------------------------------------------------

def test_no_writer_of_p2p_follows_a_link_at_its_old_temporary_names(tmp_path, trained):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    checkpoint = read_checkpoint(trained / "checkpoints" / "latest.safetensors")
    out = tmp_path / "out"
    log = out / "metrics.jsonl"
    writes = {
        out / "a.safetensors": lambda t: write_checkpoint(t, checkpoint.tensors, checkpoint.metadata),
        out / "latest.safetensors": lambda t: link_checkpoint(out / "a.safetensors", t),
        out / "eval.json": lambda t: write_json(t, {"metrics": {}}),
        out / "epoch_001.png": lambda t: save_grid([torch.zeros(1, 3, 8, 8)], t),
        log: lambda t: RecordFile(t).forget_after(1),
    }
    for target in writes:
        plant(out, predictable(target), victim)
    log.write_text('{"step": 1, "epoch": 0.5}\n{"step": 2, "epoch": 1}\n')
    for target, write in writes.items():
        write(target)
        assert not target.is_symlink() and target.stat().st_size > 0, target
    assert victim.read_bytes() == b"precious"
    assert log.read_text() == '{"step": 1, "epoch": 0.5}\n'
    assert Image.open(out / "epoch_001.png").size == (12, 12)
    shutil.copytree(trained, tmp_path / "run", symlinks=True)
    report = tmp_path / "run" / "report.html"
    plant(report.parent, predictable(report), victim)
    write_report(report.parent)
    assert victim.read_bytes() == b"precious" and "<html" in report.read_text()


def test_translate_never_writes_through_a_link_at_a_temporary_name(tmp_path, trained):
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    source = tmp_path / "x.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 28), dtype=np.uint8)).save(source)
    out = tmp_path / "out"
    plant(out, predictable(out / "x.png"), victim)
    result = invoke("translate", trained / "checkpoints" / "latest.safetensors", source, out / "x.png")
    assert result.exit_code == 0, result.output
    assert victim.read_bytes() == b"precious"
    assert not (out / "x.png").is_symlink() and Image.open(out / "x.png").size == (28, 20)
    assert not [p for p in out.iterdir() if ".tmp" in p.name and not p.is_symlink()]


def test_the_metrics_log_on_a_full_disk(tmp_path, monkeypatch):
    log = tmp_path / "metrics.jsonl"
    before = '{"step": 1, "epoch": 0.5}\n{"step": 2, "epoch": 1}\n'
    log.write_text(before)
    fail_fsync(monkeypatch, errno.ENOSPC, ".metrics.jsonl.")
    with pytest.raises(P2PError, match="cannot write the metrics log: No space left") as caught:
        RecordFile(log).forget_after(1)
    assert caught.value.file == str(log) and "--resume" in caught.value.hint
    assert log.read_text() == before and not leftovers(tmp_path)
    appended = RecordFile(log)
    appended.open()

    class Full:
        def write(self, text: str) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def close(self) -> None:
            pass

    appended._file = Full()
    with pytest.raises(P2PError, match="cannot write the metrics log: No space left"):
        appended.write({"step": 3, "epoch": 1.5})


def test_the_report_on_a_full_disk_keeps_the_old_page(tmp_path, trained, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained, run, symlinks=True)
    before = write_report(run).read_bytes()
    fail_fsync(monkeypatch, errno.ENOSPC, ".report.html.")
    with pytest.raises(P2PError, match="cannot write the report: No space left") as caught:
        write_report(run)
    assert caught.value.file == str(run / "report.html")
    assert (run / "report.html").read_bytes() == before and not leftovers(run)


def test_eval_out_that_cannot_be_written_is_refused_before_scoring(tmp_path, trained, monkeypatch):
    import p2pcore.engine.evaluate.scoring as scoring

    scored: list[object] = []
    monkeypatch.setattr(scoring, "evaluate_checkpoint", lambda *args, **kwargs: scored.append(args))
    out = tmp_path / "figures"
    refuse_temporary_files(monkeypatch, tmp_path)
    result = invoke("eval", trained / "checkpoints" / "latest.safetensors", "--metric", "psnr", "--out", out)
    assert isinstance(result.exception, P2PError), result.output
    assert "cannot write the evaluation: Read-only file system" in result.exception.message
    assert result.exception.file == str(out) and "--out" in result.exception.hint
    assert scored == [] and not out.exists()


def test_a_full_disk_at_the_epochs_figures_keeps_the_epochs_checkpoint(tmp_path, host, monkeypatch):
    run = tmp_path / "run"
    fail_fsync(monkeypatch, errno.ENOSPC, "/eval/")
    with pytest.raises(P2PError, match="cannot write the evaluation: No space left") as caught:
        Trainer(validate_recipe({**RECIPE, "eval": {"metrics": ["psnr"]}}, host), host, run).fit()
    assert caught.value.file == str(run / "eval" / "epoch_001.json")
    assert "epoch_001.safetensors is written" in caught.value.hint
    assert read_checkpoint(run / "checkpoints" / "epoch_001.safetensors").metadata["epoch"] == 1
    assert not (run / "eval" / "epoch_001.json").exists() and not leftovers(run)


# -- whole runs: exit 2 and one screen, nothing lost -----------------------------------------------------------

def failing_p2p(tmp_path: Path, args: list[str], mark: str, code: str) -> subprocess.CompletedProcess:
    """`p2p ARGS` in a process whose fsync fails with errno `code` on files whose path holds `mark`."""
    inject = tmp_path / "inject"
    inject.mkdir(exist_ok=True)
    (inject / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(inject), *filter(None, [os.environ.get(
        "PYTHONPATH")])]), "P2P_FAULT_PATH": mark, "P2P_FAULT_ERRNO": code, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


@LINUX
def test_resume_on_a_full_disk_ends_with_exit_2_and_keeps_the_log(tmp_path, trained):
    run = tmp_path / "run"
    shutil.copytree(trained, run, symlinks=True)
    log = run / "metrics.jsonl"
    with log.open("a") as file:  # a step the checkpoint has not seen: the resume drops it
        file.write(json.dumps({"step": 99, "epoch": 1.0, "G/l1": 1.0}) + "\n")
    before = log.read_bytes()
    done = failing_p2p(tmp_path, ["run", "--resume", "--out", str(run), "--quiet"], ".metrics.jsonl.", "ENOSPC")
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) < 25, done.stderr
    assert "metrics.jsonl" in done.stderr and "No space left on device" in done.stderr, done.stderr
    assert log.read_bytes() == before and not leftovers(run)


@LINUX
def test_a_full_disk_at_the_sample_grid_keeps_the_epochs_checkpoint(tmp_path):
    recipe = tmp_path / "atomic.toml"
    recipe.write_text(tomli_w.dumps(RECIPE))
    run = tmp_path / "run"
    done = failing_p2p(tmp_path, ["run", str(recipe), "--out", str(run), "--quiet"], "/samples/", "ENOSPC")
    assert done.returncode == 2, done.stderr
    text = " ".join(done.stderr.split())
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) < 25, done.stderr
    assert "cannot write the sample grid: No space left on device" in text, done.stderr
    assert "epoch_001.png" in text and "epoch_001.safetensors is written" in text, done.stderr
    assert read_checkpoint(run / "checkpoints" / "epoch_001.safetensors").metadata["epoch"] == 1
    assert not (run / "samples" / "epoch_001.png").exists() and not leftovers(run)
