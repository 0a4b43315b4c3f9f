"""The terminal display at 80 columns: the status line keeps steps, rate and ETA for every task, figures sit on
lines of their own, non-finite values print, translate's rate matches its summary, the end of a run names the
report, the checkpoints and the next command; and a real `p2p run` seen through tmux at 80 columns."""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from p2pcore.api.callbacks import RunInfo
from p2pcore.progress import TrainingProgress, end_of_run, summary_lines
from p2pcore.progress.files import FilesPerSecond, FilesRemaining
from p2pcore.progress.layout import duration, figure_lines, groups, number, status_line
from p2pcore.progress.training import StepClock
from p2pcore.rundir import RunDir

ROOT = Path(__file__).resolve().parents[1]
WIDTH = 80
STATUS = re.compile(r"^epoch [\d.-]+/\d+ [━─]+ \d+/\d+  [\d.]+ (it/s|s/it)  ETA \d+:\d\d:\d\d$")

CYCLEGAN_STEP = {"D/gan_b": 0.2617, "D/gan_a": 0.2672, "D/total": 0.5289, "G/gan_b": 0.4998, "G/gan_a": 0.338,
                 "G/cycle_a": 0.2414, "G/cycle_b": 0.351, "G/idt_a": 0.1201, "G/idt_b": 0.1302, "G/total": 6.123,
                 "lr": 0.0002, "skipped_files": 0, "skipped_steps": 0}
EVAL = {"eval/l1": 0.226, "eval/psnr": 16.841, "eval/ssim": 0.5123, "eval/lab_histogram_intersection": 0.8397,
        "eval/lab_histogram_intersection/L": 0.81, "eval/lab_histogram_intersection/a": 0.84}


def test_numbers_print_whatever_a_run_logs() -> None:
    assert number(float("nan")) == "nan" and number(float("inf")) == "inf" and number(float("-inf")) == "-inf"
    assert number(None) == "-" and number(0.84) == "0.8400" and number(0.8397) == "0.8397"
    assert number(16.841) == "16.84" and number(3) == "3" and number(10**5000) == "huge"
    assert number("text") == "text" and number(True) == "true"
    assert duration(None) == "-:--:--" and duration(float("nan")) == "-:--:--" and duration(3725) == "1:02:05"
    assert duration(2 * 86400 + 5) == "2d 0:00:05"


@pytest.mark.parametrize("width", [80, 60, 40])
@pytest.mark.parametrize(("step", "total", "epoch", "epochs"), [(0, 8, None, 2), (140, 400, 3.5, 8),
                                                                  (123456, 2400000, 123.45, 200)])
def test_status_line_keeps_steps_rate_and_eta(width: int, step: int, total: int, epoch: float | None,
                                              epochs: int) -> None:
    line = status_line(step=step, total=total, rate=12.34, eta=21.0, width=width, epoch=epoch, epochs=epochs)
    assert len(line.text) <= width
    assert f"{step}/{total}" in line.text and "12.3 it/s" in line.text and "ETA 0:00:21" in line.text
    if width == 80:
        assert line.text.startswith("epoch ") and line.bar is not None


def test_status_line_slow_rates_and_unknown_eta() -> None:
    line = status_line(step=3, total=24, rate=0.4, eta=None, width=WIDTH, epoch=0.1, epochs=2)
    assert "2.5 s/it" in line.text and "ETA -:--:--" in line.text and len(line.text) <= WIDTH


def test_figure_lines_wrap_by_group_within_80_columns() -> None:
    losses = {k: v for k, v in CYCLEGAN_STEP.items() if k[0] in "DG"}
    lines = figure_lines(groups(losses), WIDTH)
    assert all(len(line) <= WIDTH for line in lines)
    assert lines[0].startswith("  D: gan_b 0.2617") and any(line.startswith("  G: gan_b") for line in lines)
    for name in ("cycle_a", "idt_b", "total 6.123"):
        assert name in "\n".join(lines)
    shown = figure_lines(groups(EVAL), WIDTH, heading="epoch 3")
    text = "\n".join(shown)
    assert shown[0].startswith("  epoch 3 eval: l1 0.2260  psnr 16.84") and all(len(line) <= WIDTH for line in shown)
    assert "lab_histogram_intersection 0.8397  /L 0.8100  /a 0.8400" in text.replace("\n", " ").replace("  ", " ") \
        or "/L 0.8100" in text


def test_figure_lines_shorten_what_cannot_fit() -> None:
    many = {f"G/term_{i:02d}": i / 7 for i in range(40)}
    lines = figure_lines(groups(many), WIDTH, max_lines=2)
    assert len(lines) == 2 and all(len(line) <= WIDTH for line in lines) and lines[-1].endswith("more")
    long = figure_lines(groups({"eval/" + "x" * 120: 1.0}), 40)
    assert len(long) == 1 and len(long[0]) <= 40 and long[0].endswith("… 1.000")
    direction = groups({"eval/a2b/lab_histogram_intersection": 0.5, "eval/a2b/lab_histogram_intersection/L": 0.4})
    assert direction == [("eval/a2b", [("lab_histogram_intersection", "0.5000"), ("/L", "0.4000")])]


def run_info(**changes: object) -> RunInfo:
    info = {"run_dir": Path("runs/x"), "recipe": {"train": {}}, "epochs": 2, "steps_per_epoch": 12,
            "start_epoch": 0, "start_step": 0, "resumed": False}
    return RunInfo(**{**info, **changes})  # type: ignore[arg-type]


def shown(display: TrainingProgress, width: int = WIDTH) -> list[str]:
    console = Console(width=width, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(display)
    return console.file.getvalue().splitlines()  # type: ignore[attr-defined]


def test_training_display_at_80_columns_with_every_figure() -> None:
    display = TrainingProgress(Console(file=io.StringIO()), disable=True)
    display.on_run_start(run_info())
    assert STATUS.match(shown(display)[0].replace("- it/s", "0 it/s").replace("-:--:--", "0:00:00"))
    display.on_step(1, 0.08, {})
    display.on_step(2, 0.17, CYCLEGAN_STEP)
    display.on_epoch_end(1, {"samples/l1": 0.41})
    display.on_evaluation(1, EVAL)
    lines = shown(display)
    assert all(len(line) <= WIDTH for line in lines), lines
    assert STATUS.match(lines[0]), lines[0]  # the ETA as soon as two steps gave a rate
    text = "\n".join(lines)
    assert "G: gan_b 0.4998" in text and "epoch 1 samples: l1 0.4100" in text and "eval: l1 0.2260" in text
    assert "lr" not in text and "skipped" not in text and "total" not in text
    display.on_step(3, 0.25, {**CYCLEGAN_STEP, "skipped_files": 2})  # shown once there are some
    assert "  skipped_files 2" in shown(display)


def test_non_finite_figures_never_break_the_display() -> None:
    display = TrainingProgress(Console(file=io.StringIO()), disable=True)
    display.on_run_start(run_info(resumed=True, start_epoch=1, start_step=12))
    display.on_step(13, 1.08, {"G/gan": float("nan"), "G/l1": float("inf"), "D/gan": None, "G/tv": -math.inf})
    display.on_evaluation(2, {"eval/psnr": float("nan"), "eval/l1": None, "eval/big": 10**5000})
    text = "\n".join(shown(display))
    assert "G: gan nan  l1 inf  tv -inf" in text and "D: gan -" in text and "psnr nan" in text
    assert "big huge" in text


def test_step_clock_gives_a_rate_from_the_second_step() -> None:
    clock = StepClock(window=30)
    clock.mark(5, now=100.0)
    assert clock.rate() is None and clock.eta(10, now=100.0) is None
    clock.mark(7, now=101.0)
    assert clock.rate() == 2.0 and clock.eta(10, now=101.0) == 5.0 and clock.eta(10, now=102.0) == 4.0
    for second in range(2, 100):  # the rate follows the last half minute
        clock.mark(7 + second * 4, now=100.0 + second)
    assert clock.rate() == pytest.approx(4.0)


def test_translate_bar_rate_is_the_summary_rate() -> None:
    """Files written in one burst after a slow start: the bar says what the summary says (files over the time
    since the start), not the burst's instantaneous rate."""
    now = [0.0]
    with Progress(get_time=lambda: now[0], console=Console(file=io.StringIO()), disable=True) as bar:
        task_id = bar.add_task("translate", total=20)
        now[0] = 2.3
        for _ in range(10):
            bar.advance(task_id, 1)
            now[0] += 1e-5
        task = bar.tasks[0]
        assert str(FilesPerSecond().render(task)) == f"{10 / task.elapsed:.1f} files/s" == "4.3 files/s"
        assert str(FilesRemaining().render(task)) == "ETA 0:00:02"


def fake_run(root: Path, *, best: bool) -> RunDir:
    run = RunDir(root)
    run.checkpoints.mkdir(parents=True)
    run.report.write_text("<html></html>")
    run.latest.write_bytes(b"x")
    if best:
        run.best.write_bytes(b"x")
        run.evaluations.mkdir()
        run.best_evaluation.write_text(json.dumps({"metric": "eval/l1", "value": 0.226, "epoch": 6, "step": 600}))
    return run


def test_summary_names_report_checkpoints_and_next_command(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "quickstart", best=True)
    lines = dict(summary_lines(run, steps=800, epochs=8))
    assert lines["done"] == f"8 epochs, 800 steps in {run.path}"
    assert str(run.report) in lines["report"]
    assert lines["best"] == "checkpoints/best.safetensors: epoch 6, chosen by eval/l1 0.2260"
    assert lines["latest"] == "checkpoints/latest.safetensors: epoch 8, step 800"
    assert lines["next"] == f"p2p translate {run.best} IN_DIR OUT_DIR"
    plain = dict(summary_lines(fake_run(tmp_path / "no_best", best=False), steps=1, epochs=1))
    assert "best" not in plain and plain["next"].startswith(f"p2p translate {tmp_path / 'no_best'}/checkpoints/latest")
    assert plain["done"].startswith("1 epoch, 1 step in")


def test_summary_fits_80_columns_where_it_can(tmp_path: Path) -> None:
    run = fake_run(tmp_path / "q", best=True)
    run.best_evaluation.write_text(json.dumps({"metric": "eval/a2b/lab_histogram_intersection/L", "value": 0.5,
                                               "epoch": 3}))
    console = Console(width=WIDTH, file=io.StringIO(), color_system=None)
    end_of_run(console, run, type("Result", (), {"steps": 40, "epochs": 4})())
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines[2:4] == ["  best    checkpoints/best.safetensors: epoch 3",
                          "          chosen by eval/a2b/lab_histogram_intersection/L 0.5000"]
    assert lines[-1] == f"  p2p translate {run.best} IN_DIR OUT_DIR" and lines[-2] == "next:"


ANSI_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
def test_display_ends_its_last_line_before_the_summary(tmp_path: Path, terminal: bool) -> None:
    """Piped to a file or redrawn in a terminal, the display's last line ends before the summary's `done:`,
    with no blank line between them."""
    console = Console(width=WIDTH, file=io.StringIO(), force_terminal=terminal, color_system=None)
    display = TrainingProgress(console)
    display.on_run_start(run_info(epochs=1, steps_per_epoch=2))
    display.on_step(1, 0.5, {})
    display.on_step(2, 1.0, {"G/gan": 0.5, "D/gan": 0.25})
    display.on_evaluation(1, {"eval/l1": 0.1609, "eval/psnr": 18.59})
    display.on_run_end("finished")
    end_of_run(console, fake_run(tmp_path / "q", best=False), type("Result", (), {"steps": 2, "epochs": 1})())
    written = ANSI_CONTROL.sub("", console.file.getvalue())  # type: ignore[attr-defined]
    before, done, _ = written.partition("done: 1 epoch, 2 steps in ")
    assert done and before.endswith("  epoch 1 eval: l1 0.1609  psnr 18.59\n") and not before.endswith("\n\n"), written
    if not terminal:
        assert before.count("epoch 1.00/1 ") == 1, written  # a file gets the display once, at the run's end


def test_a_log_file_gets_the_display_once_per_epoch(tmp_path: Path) -> None:
    """Piped to a job's log, each epoch's display (its steps, losses and evaluation) is written when the next
    epoch starts, so a long run shows its progress without redrawing anything."""
    console = Console(width=WIDTH, file=io.StringIO(), color_system=None)
    display = TrainingProgress(console)
    display.on_run_start(run_info(epochs=2, steps_per_epoch=2))
    display.on_step(2, 1.0, {"G/gan": 0.5})
    display.on_epoch_end(1, {"G/gan": 0.5})
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]  # the evaluation may still come
    display.on_evaluation(1, {"eval/l1": 0.25})
    display.on_step(3, 1.5, {"G/gan": 0.4})
    first = console.file.getvalue()  # type: ignore[attr-defined]
    assert first.startswith("epoch 1.00/2 ") and " 2/4 " in first.splitlines()[0], first  # as epoch 1 ended
    assert first.count("eval: l1 0.2500") == 1 and "gan 0.4000" not in first and first.endswith("\n"), first
    display.on_step(4, 2.0, {"G/gan": 0.3})
    display.on_evaluation(2, {"eval/l1": 0.2})
    display.on_run_end("finished")
    written = console.file.getvalue()  # type: ignore[attr-defined]
    assert written.startswith(first) and written.count("eval: l1 0.2500") == 1, written
    assert written.count("eval: l1 0.2000") == 1 and written.endswith("\n"), written

TMUX_RECIPE = """task = { name = "cyclegan", pool_size = 0 }
[data]
name = "synthetic_thermal"
size = 32
train_count = 4
test_count = 2
paired = false
[model.generator_ab]
name = "resnet"
n_blocks = 1
ngf = 4
[model.generator_ba]
name = "resnet"
n_blocks = 1
ngf = 4
[model.discriminator_a]
name = "patch"
n_layers = 1
ndf = 4
conditional = false
[model.discriminator_b]
name = "patch"
n_layers = 1
ndf = 4
conditional = false
[loss]
gan_b = { name = "gan", mode = "lsgan", prefix = "d_b" }
gan_a = { name = "gan", mode = "lsgan", prefix = "d_a" }
cycle_a = { name = "l1", pred = "rec_a", target = "real_a", weight = 10.0 }
cycle_b = { name = "l1", pred = "rec_b", target = "real_b", weight = 10.0 }
[train]
epochs = 2
batch_size = 2
log_every = 1
sample_count = 2
num_workers = 0
[eval]
metrics = ["lab_histogram_intersection"]
directions = ["a2b"]
best = "eval/a2b/lab_histogram_intersection"
"""


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_cyclegan_run_in_an_80_column_terminal(tmp_path: Path) -> None:
    """`p2p run` in a real 80x24 terminal: one status line with steps, rate and ETA (a display wider than the
    terminal would leave copies of itself behind), the figures below it, then the summary."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TMUX_RECIPE)
    out, finished = tmp_path / "run", tmp_path / "finished"
    tmux = [shutil.which("tmux") or "tmux", "-L", f"p2p-display-{os.getpid()}"]  # a server of its own
    command = (f"cd {ROOT} && {sys.executable} -m p2pcore run {recipe} --out {out}; echo $? > {finished}; "
               "sleep 600")
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "COLUMNS", "LINES")} | {"TERM": "xterm-256color"}
    subprocess.run([*tmux, "new-session", "-d", "-x", str(WIDTH), "-y", "24", "bash", "-c", command], check=True,
                   env=env)
    try:
        deadline = time.monotonic() + 300
        while not finished.exists() and time.monotonic() < deadline:
            time.sleep(1)
        screen = subprocess.run([*tmux, "capture-pane", "-p", "-J", "-S", "-"], capture_output=True, text=True,
                                check=True).stdout
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)
    assert finished.exists() and finished.read_text().strip() == "0", screen
    lines = screen.rstrip().splitlines()
    status = [line for line in lines if line.startswith("epoch ")]
    assert len(status) == 1 and STATUS.match(status[0]) and " 4/4 " in status[0], screen
    at = lines.index(status[0])
    display = lines[at:lines.index(next(line for line in lines if line.startswith("done: ")))]
    assert all(len(line) <= WIDTH for line in display), screen
    assert lines[at + 1].startswith("  D: gan_b ") and lines[at + 2].startswith("  G: gan_b "), screen
    assert "cycle_a" in lines[at + 2] and "cycle_b" in lines[at + 2], screen
    assert any(line.startswith("  epoch 2 eval/a2b: lab_histogram_intersection ") for line in lines), screen
    assert f"done: 2 epochs, 4 steps in {out}" in lines, screen
    assert f"  report  {out}/report.html (open it in a browser)" in lines, screen
    at = next(at for at, line in enumerate(lines) if line.startswith("  best    "))  # two lines at 80 columns
    assert re.match(r"  best    checkpoints/best\.safetensors: epoch \d$", lines[at]), screen
    assert re.match(r" {10}chosen by eval/a2b/lab_histogram_intersection \d\.\d{4}$", lines[at + 1]), screen
    assert "  latest  checkpoints/latest.safetensors: epoch 2, step 4" in lines, screen
    assert lines[-2:] == ["next:", f"  p2p translate {out}/checkpoints/best.safetensors IN_DIR OUT_DIR"], screen
    assert "Traceback" not in screen
