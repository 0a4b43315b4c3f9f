"""A logger plugin written through the callback contract (p2pcore.api.Callback), registered by a plugin and
named in the recipe's ``[callbacks.<label>]``, follows a real short run and its resumption; a callback that
raises stops the run with an error naming it and leaves the checkpoints intact."""

from __future__ import annotations

import csv
import json
import types
from collections.abc import Mapping
from pathlib import Path

import pytest

from p2pcore import P2PError
from p2pcore.api import Callback, CallbackParams, Field, RunInfo, hookimpl
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import validate_recipe
from p2pcore.testing import check_callback, host_with, tiny_recipe


class CsvParams(CallbackParams):
    file: str = Field(description="the CSV file the figures are appended to")
    fail_in: str = Field("", description="a method that raises, to test the error (empty: none)")


class CsvLogger(Callback):
    """Appends every figure the run logs to a CSV file (step, epoch, key, value), and keeps its calls."""

    def __init__(self, params: CsvParams) -> None:
        self.file = Path(params.file)
        self.fail_in = params.fail_in
        self.calls: list[tuple] = []
        self.rows = 0

    def _append(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        with self.file.open("a", newline="") as f:
            writer = csv.writer(f)
            for key, value in figures.items():
                writer.writerow([step, epoch, key, value])
                self.rows += 1

    def on_run_start(self, run: RunInfo) -> None:
        self.calls.append(("start", run))
        self.step = run.start_step

    def on_step(self, step: int, epoch: float, figures: Mapping[str, float | None]) -> None:
        self.calls.append(("step", step, epoch, dict(figures)))
        self.step = step
        if self.fail_in == "on_step" and step == 3:
            raise RuntimeError("the disk is full")
        self._append(step, epoch, figures)

    def on_epoch_end(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self.calls.append(("epoch_end", epoch, dict(figures)))
        self._append(self.step, epoch, figures)

    def on_evaluation(self, epoch: int, figures: Mapping[str, float | None]) -> None:
        self.calls.append(("evaluation", epoch, dict(figures)))
        self._append(self.step, epoch, figures)

    def on_checkpoint(self, epoch: int, step: int, path: Path) -> None:
        self.calls.append(("checkpoint", epoch, step, path, path.exists()))

    def on_run_end(self, status: str) -> None:
        self.calls.append(("end", status))


BUILT: list[CsvLogger] = []


def build_logger(params: CsvParams, ctx: object) -> CsvLogger:
    BUILT.append(CsvLogger(params))
    return BUILT[-1]


PLUGIN = types.SimpleNamespace(__name__="csv_logger", p2p_register_callbacks=hookimpl(
    lambda register: register("csv_log", build_logger, params=CsvParams, summary="figures to a CSV file")))


@pytest.fixture(scope="module")
def host():
    return host_with(("csv_logger", PLUGIN))


def make(host, out: Path, csv_file: Path, **train) -> Trainer:
    """2 epochs of 4 steps (8 items, batch 2), a log line every 3 steps, `[eval]` every 2nd epoch."""
    data = tiny_recipe(data={"train_count": 8}, train={"epochs": 2, "log_every": 3, **train},
                       eval={"metrics": ["l1"], "every": 2},
                       callbacks={"log": {"name": "csv_log", "file": str(csv_file)}})
    return Trainer(validate_recipe(data, host, default_name="run"), host, out)


def kinds(calls: list[tuple]) -> list[str]:
    return [call[0] for call in calls]


def test_the_contract_check_passes(host, tmp_path):
    check_callback(host, "csv_log", run_dir=tmp_path / "run", file=str(tmp_path / "figures.csv"))


def test_a_logger_plugin_sees_a_run_and_its_resumption(host, tmp_path):
    out, figures_csv = tmp_path / "run", tmp_path / "figures.csv"
    BUILT.clear()
    make(host, out, figures_csv).fit()
    (logger,) = BUILT
    calls = logger.calls
    assert kinds(calls) == ["start", *["step"] * 4, "epoch_end", "checkpoint", *["step"] * 4, "epoch_end",
                            "evaluation", "checkpoint", "checkpoint", "end"]
    start = calls[0][1]
    assert (start.run_dir, start.epochs, start.steps_per_epoch) == (out, 2, 4)
    assert (start.start_step, start.start_epoch, start.resumed) == (0, 0, False)
    assert start.recipe["callbacks"]["log"]["name"] == "csv_log"

    steps = [call for call in calls if call[0] == "step"]
    assert [s[1] for s in steps] == list(range(1, 9))
    assert [s[2] for s in steps] == [n / 4 for n in range(1, 9)]  # the position in epochs, as the log has it
    logged = {s[1]: s[3] for s in steps if s[3]}
    assert sorted(logged) == [3, 6, 8]  # every 3rd step, and the last, whatever log_every says
    assert {"G/l1", "G/gan", "D/gan", "G/total", "lr", "skipped_files", "skipped_steps"} <= set(logged[3])
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    for step, figures in logged.items():  # the run's own log is written through the same calls
        (line,) = [line for line in lines if line["step"] == step and "G/l1" in line]
        assert {k: v for k, v in line.items() if k not in ("step", "epoch", "time")} == figures

    assert [(c[1], list(c[2])) for c in calls if c[0] == "epoch_end"] == [(1, ["samples/l1"]), (2, ["samples/l1"])]
    assert [(c[1], list(c[2])) for c in calls if c[0] == "evaluation"] == [(2, ["eval/l1"])]  # [eval] every 2
    checkpoints = [c[1:] for c in calls if c[0] == "checkpoint"]
    assert checkpoints == [(1, 4, out / "checkpoints" / "epoch_001.safetensors", True),
                           (2, 8, out / "checkpoints" / "epoch_002.safetensors", True),
                           (2, 8, out / "checkpoints" / "latest.safetensors", True)]
    assert read_checkpoint(checkpoints[-1][2]).metadata["step"] == 8
    assert calls[-1] == ("end", "finished")
    written = logger.rows

    BUILT.clear()
    make(host, out, figures_csv, epochs=3).fit(resume=True)  # a resume may add epochs
    (again,) = BUILT
    calls = again.calls
    start = calls[0][1]
    assert (start.start_step, start.start_epoch, start.resumed, start.epochs) == (8, 2, True, 3)
    assert [c[1] for c in calls if c[0] == "step"] == [9, 10, 11, 12]
    assert [c[1] for c in calls if c[0] == "step" and c[3]] == [9, 12]
    assert [c[1] for c in calls if c[0] == "epoch_end"] == [3] and [c[1] for c in calls if c[0] == "evaluation"] == [3]
    assert [c[1:3] for c in calls if c[0] == "checkpoint"] == [(3, 12), (3, 12)]
    assert calls[-1] == ("end", "finished")
    with figures_csv.open(newline="") as f:
        rows = list(csv.reader(f))
    assert len(rows) == written + again.rows
    assert [int(r[0]) for r in rows] == sorted(int(r[0]) for r in rows)  # appended where the first run stopped
    assert int(rows[-1][0]) == 12 and rows[-1][2] == "eval/l1"


def test_a_callback_that_raises_names_itself_and_keeps_the_checkpoints(host, tmp_path):
    out = tmp_path / "run"
    BUILT.clear()
    data = tiny_recipe(data={"train_count": 8}, train={"epochs": 2, "checkpoint_steps": 2},
                       callbacks={"log": {"name": "csv_log", "file": str(tmp_path / "f.csv"), "fail_in": "on_step"}})
    trainer = Trainer(validate_recipe(data, host, default_name="run"), host, out)
    with pytest.raises(P2PError) as caught:
        trainer.fit()
    error = caught.value
    assert "'log'" in error.message and "on_step" in error.message and "the disk is full" in error.message
    assert error.key == "callbacks.log" and "--resume" in error.hint and "Traceback" not in str(error)
    assert BUILT[0].calls[-1] == ("end", "failed")
    assert read_checkpoint(out / "checkpoints" / "latest.safetensors").metadata["step"] == 2
    assert [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
