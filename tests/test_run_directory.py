"""A run directory: resumed from its own recipe, one writer at a time, nothing of the user's
overwritten, and run names that stay inside runs/."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_checkpoints import RECIPE, logged_steps, wait_for_step
from typer.testing import CliRunner

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import app
from p2pcore.rundir import check_run_dir, exclusive, resume_changes, safe_name

ROOT = Path(__file__).resolve().parents[1]


def p2p(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "p2pcore", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_the_interrupt_hint_resumes_the_same_run_whatever_the_overrides(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.replace("checkpoint_steps = 1", "checkpoint_steps = 0"))
    out = tmp_path / "my run"
    proc = p2p("run", str(recipe), "--out", str(out), "--quiet", "--set", "data.train_count=16",
               "--set", "train.epochs=3")
    wait_for_step(proc, out, 3)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    hint = " ".join(stderr.split("continue with", 1)[1].split())
    assert hint.startswith("p2p run --resume --out")
    args = shlex.split(hint)[1:]  # pasted as printed, after the program name
    proc = p2p(*args, "--quiet")
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    final = read_checkpoint(out / "checkpoints" / "latest.safetensors").metadata
    assert final["step"] == 3 * 4 and final["recipe"]["data"]["train_count"] == 16  # 16 items, batch 4


def test_resume_refuses_changes_that_would_make_another_run(tmp_path, host):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.replace("epochs = 6", "epochs = 1"))
    out = tmp_path / "run"
    runner = CliRunner()
    assert runner.invoke(app, ["run", str(recipe), "--out", str(out), "--quiet"]).exit_code == 0
    result = runner.invoke(app, ["run", "--resume", "--out", str(out), "--quiet", "--set", "optim.lr=0.1",
                                 "--set", "data.train_count=8"])
    assert isinstance(result.exception, P2PError) and "may not change 2 key(s)" in result.exception.message
    assert any("optim.lr: 0.0002 in the run, 0.1 now" in line for line in result.exception.details)
    result = runner.invoke(app, ["run", str(recipe), "--resume", "--out", str(out), "--quiet",
                                 "--set", "train.epochs=2"])
    assert result.exit_code == 0, result.output
    assert read_checkpoint(out / "checkpoints" / "latest.safetensors").metadata["epoch"] == 2
    assert "epochs = 2" in (out / "recipe.toml").read_text()


def test_resume_changes_lists_both_values():
    with pytest.raises(P2PError) as caught:
        resume_changes({"train": {"epochs": 2, "batch_size": 4}}, {"train": {"epochs": 3, "batch_size": 8}})
    assert caught.value.key == "train.batch_size" and caught.value.details == [
        "train.batch_size: 4 in the run, 8 now"]
    assert resume_changes({"train": {"epochs": 2}}, {"train": {"epochs": 3}}) == {"train.epochs": 3}


def test_one_writer_per_run_directory(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.replace("epochs = 6", "epochs = 50"))
    out = tmp_path / "run"
    first = p2p("run", str(recipe), "--out", str(out), "--quiet")
    try:
        wait_for_step(first, out, 1)
        second = p2p("run", str(recipe), "--out", str(out), "--quiet", "--resume")
        _, stderr = second.communicate(timeout=120)
        assert second.returncode == 2 and f"process {first.pid}" in stderr and "Traceback" not in stderr
        ckpt = out / "checkpoints" / "latest.safetensors"
        result = CliRunner().invoke(app, ["inspect", str(ckpt)])  # reading a locked run's files still works
        assert result.exit_code == 0, result.output
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    steps = logged_steps(out)
    proc = p2p("run", "--resume", "--out", str(out), "--quiet", "--set", "train.max_steps=" + str(steps + 2))
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr  # a killed holder leaves no lock behind


def test_lock_is_exclusive_within_one_process_tree(tmp_path):
    with exclusive(tmp_path / "run"):
        code = ("import sys; from pathlib import Path; from p2pcore.rundir import exclusive\n"
                "from p2pcore.errors import P2PError\n"
                "try:\n    exclusive(Path(sys.argv[1])).__enter__()\nexcept P2PError as e:\n"
                "    print(e.message); sys.exit(2)\n")
        result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "run")], capture_output=True, text=True)
        assert result.returncode == 2 and f"process {os.getpid()}" in result.stdout
        with exclusive(tmp_path / "run"):  # re-entrant in the holder
            pass


def test_out_must_be_empty_or_a_run(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "recipe.toml").write_text("# my own notes\n")
    (mine / "notes.txt").write_text("precious")
    with pytest.raises(P2PError, match="folder of other files"):
        check_run_dir(mine, resume=False)
    with pytest.raises(P2PError, match="already holds a run"):
        check_run_dir(_run_like(tmp_path), resume=False)
    with pytest.raises(P2PError, match="no run to resume"):
        check_run_dir(tmp_path / "empty", resume=True)
    (tmp_path / "afile").write_text("")
    with pytest.raises(P2PError, match="is a file"):
        check_run_dir(tmp_path / "afile" / "sub", resume=False)
    check_run_dir(tmp_path / "new", resume=False)


def _run_like(tmp_path: Path) -> Path:
    run = tmp_path / "old"
    (run / "checkpoints").mkdir(parents=True)
    (run / "recipe.toml").write_text("")
    return run


def test_run_into_the_recipes_own_folder_overwrites_nothing(tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text("# my comments\n" + RECIPE)
    result = CliRunner().invoke(app, ["run", str(recipe), "--out", str(tmp_path), "--quiet"])
    assert result.exit_code != 0 and isinstance(result.exception, P2PError)
    assert recipe.read_text().startswith("# my comments")


@pytest.mark.parametrize("name", ["/abs/path", "../../x", "..", "a/b", ""])
def test_run_names_are_one_folder(name):
    with pytest.raises(P2PError, match="single folder name"):
        safe_name(name)


def test_a_recipe_name_cannot_escape_runs(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "../../escaped"\n' + RECIPE)
    proc = p2p("run", str(recipe), "--quiet", cwd=tmp_path)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 2 and "single folder name" in stderr
    assert not (tmp_path.parent.parent / "escaped").exists()
