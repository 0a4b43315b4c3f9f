"""Run folders: `--out` adopts only an empty folder or one p2p made (its marker), a run that died before its
first checkpoint starts again in place, a failed start leaves nothing behind, a resume continues only what its
checkpoint describes (and stops at max_steps), and only latest.safetensors keeps the optimiser state unless
train.keep_optimizer. Tiny recipes, folders crafted by the tests themselves."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_checkpoints import RECIPE, logged_steps, start, wait_for_step

from p2pcore.atomicfile import TEMP_SUFFIX
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.cli import main
from p2pcore.rundir import MARKER_FILE, METRICS_FILE, RunDir

ROOT = Path(__file__).resolve().parents[1]
TINY = RECIPE.replace("train_count = 32", "train_count = 8").replace("checkpoint_steps = 1", "checkpoint_steps = 0")


def p2p(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """`p2p ARGS` in this process: the exit code and what it printed (stdout and stderr, one line)."""
    monkeypatch.setattr(sys, "argv", ["p2p", *args])
    try:
        main()
        code = 0
    except SystemExit as ended:
        code = ended.code if isinstance(ended.code, int) else 1
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())


def recipe_file(tmp_path: Path, text: str = TINY, name: str = "tiny.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_out_refuses_a_folder_of_the_users_files(tmp_path, monkeypatch, capsys):
    mine = tmp_path / "D"
    (mine / "samples").mkdir(parents=True)
    (mine / "eval").mkdir()
    (mine / "report.html").write_text("mine")
    (mine / "samples" / "epoch_001.png").write_text("user")
    before = tree(mine)
    code, shown = p2p(monkeypatch, capsys, "run", str(recipe_file(tmp_path)), "--out", str(mine), "--quiet")
    assert code == 2 and "Traceback" not in shown
    assert str(mine) in shown and "folder of other files" in shown and "--out" in shown
    assert "eval, report.html, samples" in shown
    assert tree(mine) == before and sorted(p.name for p in mine.iterdir()) == ["eval", "report.html", "samples"]


def test_out_beside_the_users_recipe_names_the_folder_as_theirs(tmp_path, monkeypatch, capsys):
    recipe = recipe_file(tmp_path, "# my notes\n" + TINY, name="recipe.toml")
    monkeypatch.chdir(tmp_path)
    code, shown = p2p(monkeypatch, capsys, "run", "recipe.toml", "--out", ".", "--quiet")
    assert code == 2 and "folder of other files (recipe.toml)" in shown and "already holds a run" not in shown
    assert recipe.read_text().startswith("# my notes") and sorted(p.name for p in tmp_path.iterdir()) == [
        "recipe.toml"]


def test_a_new_run_marks_its_folder_and_leaves_no_lock(tmp_path, monkeypatch, capsys):
    out = tmp_path / "empty"
    out.mkdir()  # an empty folder is adopted
    recipe = recipe_file(tmp_path)
    code, shown = p2p(monkeypatch, capsys, "run", str(recipe), "--out", str(out), "--quiet",
                      "--set", "train.max_steps=1")
    assert code == 0, shown
    assert (out / MARKER_FILE).is_file() and not (out / ".lock").exists()
    code, shown = p2p(monkeypatch, capsys, "run", str(recipe), "--out", str(out), "--quiet")
    assert code == 2 and "already holds a run" in shown and "--resume" in shown


def test_a_run_folder_with_files_of_the_users_is_not_started_again(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / MARKER_FILE).write_text("")
    (out / "recipe.toml").write_text("")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(Exception, match="folder of other files \\(notes.txt\\)"):
        RunDir(out).check(resume=False)
    assert (out / "notes.txt").read_text() == "mine"


def test_a_failed_start_leaves_no_lock_and_no_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # runs/facades/ lands here; the facades data is not here
    code, shown = p2p(monkeypatch, capsys, "run", str(ROOT / "recipes" / "facades.toml"), "--quiet")
    assert code == 2 and "Traceback" not in shown
    assert not (tmp_path / "runs" / "facades").exists() and not (tmp_path / "runs").exists()
    given = tmp_path / "given"
    given.mkdir()
    code, _ = p2p(monkeypatch, capsys, "run", str(ROOT / "recipes" / "facades.toml"), "--out", str(given))
    assert code == 2 and list(given.iterdir()) == []  # the user's empty folder stays, empty


def test_a_run_killed_before_its_first_checkpoint_starts_again_in_place(tmp_path, monkeypatch, capsys):
    recipe = recipe_file(tmp_path, TINY.replace("epochs = 6", "epochs = 50").replace(
        "train_count = 8", "train_count = 400"))
    out = tmp_path / "run"
    proc = start(recipe, out, "--set", "train.checkpoint_minutes=0")
    wait_for_step(proc, out, 2)  # in the first epoch (100 steps), long before its checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not RunDir(out).has_checkpoint() and (out / MARKER_FILE).is_file() and logged_steps(out) >= 2
    (out / "samples").mkdir(exist_ok=True)
    (out / "samples" / "epoch_001.png").write_bytes(b"grid of the dead run")

    code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(out), "--quiet")
    assert code == 2 and "nothing to resume" in shown and "before writing its first checkpoint" in shown
    assert f"p2p run {out / 'recipe.toml'} --out {out}" in shown  # how to start it again

    code, shown = p2p(monkeypatch, capsys, "run", str(recipe), "--out", str(out), "--quiet",
                      "--set", "train.max_steps=3")
    assert code == 0, shown
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]  # a new log, not the dead run's continued
    assert not (out / "samples" / "epoch_001.png").exists()
    assert read_checkpoint(out / "checkpoints" / "latest.safetensors").metadata["step"] == 3


def test_an_unfinished_run_folder_is_cleared_only_of_its_own_outputs(tmp_path):
    out = tmp_path / "run"
    (out / "eval").mkdir(parents=True)
    (out / MARKER_FILE).write_text("")
    (out / "recipe.toml").write_text("")
    (out / "metrics.jsonl").write_text('{"step": 1}\n')
    (out / "eval" / "epoch_001.json").write_text("{}")
    run = RunDir(out)
    run.check(resume=False)
    with run.claim(resume=False):
        assert sorted(p.name for p in out.iterdir()) == [".lock", MARKER_FILE, "recipe.toml"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER_FILE, "recipe.toml"]  # can start again in place


@pytest.fixture
def finished(tmp_path, monkeypatch, capsys) -> Path:
    """A tiny run of 2 epochs (4 steps) with an [eval] best, its optimiser state in latest only."""
    recipe = recipe_file(tmp_path, TINY.replace("epochs = 6", "epochs = 2")
                         + '[eval]\nmetrics = ["l1"]\nbest = "eval/l1"\n')
    out = tmp_path / "run"
    code, shown = p2p(monkeypatch, capsys, "run", str(recipe), "--out", str(out), "--quiet")
    assert code == 0, shown
    return out


def test_a_hand_edited_recipe_is_refused_on_resume(finished, monkeypatch, capsys):
    recipe = finished / "recipe.toml"
    text = recipe.read_text()
    assert "lr = 0.0002" in text and "seed = 0" in text
    recipe.write_text(text.replace("lr = 0.0002", "lr = 0.1").replace("seed = 0", "seed = 5", 1))  # the run's seed
    latest = (finished / "checkpoints" / "latest.safetensors").read_bytes()
    code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(finished), "--quiet",
                      "--set", "train.epochs=3")
    assert code == 2 and "Traceback" not in shown
    assert "recipe.toml differs from its checkpoint latest.safetensors in 2 key(s)" in shown
    assert "optim.lr: 0.1 in recipe.toml, 0.0002 in the checkpoint" in shown and "seed: 5 in recipe.toml" in shown
    assert "start a new run" in shown and "--set train.epochs=N" in shown
    assert (finished / "checkpoints" / "latest.safetensors").read_bytes() == latest
    recipe.write_text(text.replace("epochs = 2", "epochs = 3"))  # what a resume may change may be edited
    code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(finished), "--quiet")
    assert code == 0, shown
    assert read_checkpoint(finished / "checkpoints" / "latest.safetensors").metadata["step"] == 6


def test_a_resume_keeps_the_runs_name(finished, monkeypatch, capsys):
    code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(finished), "--quiet",
                      "--set", 'name="other"')
    assert code == 2 and "keeps its name" in shown and "Traceback" not in shown


def test_a_resume_at_or_past_max_steps_takes_no_step(finished, monkeypatch, capsys):
    latest = finished / "checkpoints" / "latest.safetensors"
    before = latest.read_bytes()
    for steps in (4, 3):  # at it, and past it
        code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(finished), "--quiet",
                          "--set", "train.epochs=3", "--set", f"train.max_steps={steps}")
        assert code == 0, shown
        assert read_checkpoint(latest).metadata["step"] == 4 and latest.read_bytes() == before
        assert logged_steps(finished) == 4


def test_only_latest_keeps_the_optimiser_state(finished, monkeypatch, capsys):
    checkpoints = finished / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == [
        "best.safetensors", "epoch_001.safetensors", "epoch_002.safetensors", "latest.safetensors"]
    latest = read_checkpoint(checkpoints / "latest.safetensors")
    assert latest.metadata.get("optim") and any(k.startswith("optim.") for k in latest.tensors)
    for name in ("epoch_001", "epoch_002", "best"):
        ckpt = read_checkpoint(checkpoints / f"{name}.safetensors")
        assert "optim" not in ckpt.metadata and not any(k.startswith("optim.") for k in ckpt.tensors), name
        assert {k for k in ckpt.tensors if k.startswith("net.")} == {k for k in latest.tensors if k.startswith("net.")}
    epoch = read_checkpoint(checkpoints / "epoch_002.safetensors")
    assert all((epoch.tensors[k] == latest.tensors[k]).all() for k in epoch.tensors if k.startswith("net."))
    size = {name: (checkpoints / f"{name}.safetensors").stat().st_size for name in ("epoch_002", "latest")}
    assert size["epoch_002"] < size["latest"] / 2
    code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(finished), "--quiet",
                      "--from", str(checkpoints / "epoch_001.safetensors"))
    assert code == 2 and "holds the weights only" in shown and "train.keep_optimizer = true" in shown


def test_keep_optimizer_keeps_it_in_every_checkpoint(tmp_path, monkeypatch, capsys):
    recipe = recipe_file(tmp_path, TINY.replace("epochs = 6", "epochs = 2") + "keep_optimizer = true\n")
    out = tmp_path / "run"
    code, shown = p2p(monkeypatch, capsys, "run", str(recipe), "--out", str(out), "--quiet")
    assert code == 0, shown
    for path in (out / "checkpoints").iterdir():
        assert read_checkpoint(path).metadata.get("optim"), path.name
    code, shown = p2p(monkeypatch, capsys, "run", "--resume", "--out", str(out), "--quiet",
                      "--from", str(out / "checkpoints" / "epoch_001.safetensors"))
    assert code == 0, shown


def test_a_distributed_resume_at_max_steps_takes_no_step(tmp_path):
    recipe = recipe_file(tmp_path, TINY.replace("epochs = 6", "epochs = 2") + 'device = "cpu"\n')
    out = tmp_path / "run"

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "p2pcore", "run", *args, "--quiet", "--nproc", "2"], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)

    first = run(str(recipe), "--out", str(out), "--set", "train.max_steps=2")
    assert first.returncode == 0, first.stderr[-3000:]
    again = run("--resume", "--out", str(out), "--set", "train.max_steps=2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert read_checkpoint(out / "checkpoints" / "latest.safetensors").metadata["step"] == 2
    assert logged_steps(out) == 2


def test_a_cut_short_metrics_rewrite_leaves_no_temporary_file(tmp_path):
    out = tmp_path / "run"
    with RunDir(out).claim(resume=False):  # a new run that ends before its first checkpoint
        (out / "recipe.toml").write_text("")
        (out / f".{METRICS_FILE}.k3x9q2{TEMP_SUFFIX}").write_text('{"step": 1}\n')  # atomicfile's temporary name
        (out / f".{METRICS_FILE}.tmp").write_text('{"step": 1}\n')  # the name older versions used
    assert sorted(p.name for p in out.iterdir()) == [MARKER_FILE, "recipe.toml"]
