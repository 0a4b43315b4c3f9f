"""`[eval]` during training (figures in metrics.jsonl, eval/epoch_XXX.json, the best checkpoint, plateau on a
figure) and `p2p eval` on a checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from p2pcore import P2PError
from p2pcore.checkpoint.files import read_checkpoint
from p2pcore.engine.evaluate.scoring import evaluate_checkpoint
from p2pcore.engine.infer.translate import Translator
from p2pcore.engine.train.trainer import Trainer
from p2pcore.recipe import load_recipe, validate_recipe
from p2pcore.report.refresh import ReportRefresh


def recipe(**changes) -> dict:
    data = {
        "data": {"name": "synthetic_thermal", "size": 32, "train_count": 16, "test_count": 6},
        "model": {"generator": {"name": "unet", "depth": 5, "ngf": 8, "norm": "instance", "dropout": 0.0},
                  "discriminator": {"name": "patch", "ndf": 8, "n_layers": 2}},
        "loss": {"gan": {"name": "gan"}, "l1": {"name": "l1", "weight": 100.0}},
        "train": {"epochs": 3, "batch_size": 4, "num_workers": 0, "log_every": 2},
        "eval": {"metrics": ["l1", "psnr"], "best": "eval/psnr", "batch_size": 4},
    }
    return {**data, **changes}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from p2pcore import load_host

    host = load_host()
    out = tmp_path_factory.mktemp("evaluated")
    Trainer(validate_recipe(recipe(), host, default_name="run"), host, out, callbacks=[ReportRefresh()]).fit()
    return out


def lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_each_epoch_logs_the_eval_figures_and_writes_them_as_json(trained):
    evals = [line for line in lines(trained) if "eval/psnr" in line]
    assert [line["epoch"] for line in evals] == [1, 2, 3]
    assert all(line["eval/l1"] > 0 and 0 < line["eval/psnr"] < 100 for line in evals)
    written = json.loads((trained / "eval" / "epoch_003.json").read_text())
    assert written["items"] == 6 and written["split"] == "test"
    assert written["metrics"]["eval/psnr"] == pytest.approx(evals[-1]["eval/psnr"], abs=1e-5)
    assert written["higher_is_better"] == {"eval/l1": False, "eval/psnr": True}
    assert "eval/psnr" in (trained / "report.html").read_text()  # refreshed after evaluations


def test_the_best_checkpoint_is_the_epoch_with_the_best_figure(trained):
    evals = {line["epoch"]: line["eval/psnr"] for line in lines(trained) if "eval/psnr" in line}
    best_epoch = max(evals, key=evals.get)
    best = json.loads((trained / "eval" / "best.json").read_text())
    assert best["epoch"] == best_epoch and best["value"] == pytest.approx(evals[best_epoch], abs=1e-5)
    kept = read_checkpoint(trained / "checkpoints" / "best.safetensors")
    assert kept.metadata["epoch"] == best_epoch
    assert kept.metadata["best"]["metric"] == "eval/psnr"


def test_eval_scores_a_checkpoint_like_translating_and_comparing_by_hand(trained, host, tmp_path):
    checkpoint = trained / "checkpoints" / "latest.safetensors"
    result = evaluate_checkpoint(checkpoint, host, {"metrics": ["l1"]}, device="cpu", mode="eval")
    translator = Translator(checkpoint, host, device="cpu", protocol="eval")
    test = translator.adapter.dataset("test", train=False)
    by_hand = torch.stack([(translator(test[i]["a"]) - test[i]["b"]).abs().mean() for i in range(len(test))])
    assert result.items == len(test) == 6
    assert result.figures["eval/l1"] == pytest.approx(float(by_hand.mean()), rel=1e-4)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "p2pcore", *args], capture_output=True, text=True, timeout=300)


def test_p2p_eval_writes_json_and_markdown_and_prints_the_table(trained, tmp_path):
    done = run_cli("eval", str(trained / "checkpoints" / "latest.safetensors"), "--metric", "l1",
                   "--metric", "{ name = \"psnr\" }", "--max-items", "4", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "eval/psnr" in done.stdout and "4 items" in done.stdout
    saved = json.loads((tmp_path / "latest_test.json").read_text())
    assert saved["items"] == 4 and set(saved["metrics"]) == {"eval/l1", "eval/psnr"}
    assert "| `eval/psnr` |" in (tmp_path / "latest_test.md").read_text()


def test_p2p_eval_refuses_an_unknown_metric_on_one_screen(trained, tmp_path):
    done = run_cli("eval", str(trained / "checkpoints" / "latest.safetensors"), "--metric", "psnrr",
                   "--out", str(tmp_path))
    assert done.returncode == 2
    assert "unknown metric 'psnrr'" in done.stderr and "did you mean 'psnr'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_checkpoint_without_eval_metrics_needs_metric_options(host, tmp_path):
    data = recipe(train={"epochs": 1, "batch_size": 4, "num_workers": 0, "max_steps": 1})
    data.pop("eval")
    Trainer(validate_recipe(data, host, default_name="plain"), host, tmp_path).fit()
    with pytest.raises(P2PError, match="names no \\[eval\\] metrics") as caught:
        evaluate_checkpoint(tmp_path / "checkpoints" / "latest.safetensors", host, {}, device="cpu")
    assert caught.value.key == "--metric"


@pytest.mark.parametrize(("eval_table", "key", "message"), [
    ({"metrics": ["l1"], "best": "eval/psnr"}, "eval.best", "not a figure this run logs"),
    ({"metrics": ["l1", "l1"]}, "eval.metrics.l1", "listed twice"),
    ({"metrics": ["l1"], "directions": ["b2a"]}, "eval.directions", "no direction 'b2a'"),
    ({"metrics": ["l1"], "every": 0}, "eval.every", "greater than or equal to 1"),
])
def test_eval_tables_that_cannot_work_are_refused(host, eval_table, key, message):
    with pytest.raises(P2PError, match=message) as caught:
        validate_recipe(recipe(eval=eval_table), host)
    assert caught.value.key == key


def test_a_paired_metric_on_an_unpaired_task_is_refused(host):
    cyclegan = Path(__file__).parents[1] / "recipes" / "quickstart_cyclegan.toml"
    with pytest.raises(P2PError, match="no target") as caught:
        load_recipe(cyclegan, host, ['eval.metrics=["psnr"]'])
    assert caught.value.key == "eval.metrics.psnr"
    assert load_recipe(cyclegan, host, ['eval.metrics=["lab_histogram_intersection"]']).eval.metrics


def test_plateau_reads_an_eval_figure(host):
    parsed = validate_recipe(recipe(schedule={"name": "plateau", "metric": "eval/psnr", "mode": "max"}), host)
    assert parsed.schedule.params.reads() == {"eval/psnr"}


def test_a_metric_that_cannot_score_the_data_fails_before_training(host, tmp_path):
    cyclegan = Path(__file__).parents[1] / "recipes" / "quickstart_cyclegan.toml"
    both = load_recipe(cyclegan, host, ["eval.directions=[]", "train.num_workers=0"])  # b2a outputs thermal
    trainer = Trainer(both, host, tmp_path)
    with pytest.raises(P2PError, match="colour") as caught:
        trainer.fit()
    assert caught.value.key.startswith("eval.metrics.lab_histogram_intersection")
    assert trainer.progress.step == 0
