"""`p2p eval --pred DIR --real DIR`: outputs made elsewhere scored against real images matched by file stem."""

from __future__ import annotations

import math

import numpy as np
import pytest
from PIL import Image

from p2pcore.engine.evaluate.folders import evaluate_folders
from p2pcore.errors import P2PError
from p2pcore.plugins import load_host


@pytest.fixture(scope="module")
def host():
    return load_host()


def write_images(folder, images: dict[str, np.ndarray], suffix: str = ".png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, pixels in images.items():
        Image.fromarray(pixels).save(folder / f"{stem}{suffix}")


def scenes(seed: int, count: int = 3, size: tuple[int, int] = (24, 40)) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"scene{i}": rng.integers(0, 256, (*size, 3), dtype=np.uint8) for i in range(count)}


def test_figures_match_a_direct_computation_and_unmatched_files_are_listed(tmp_path, host):
    real, pred = scenes(0), scenes(1)
    write_images(tmp_path / "real", real)
    write_images(tmp_path / "pred", pred)
    write_images(tmp_path / "pred", {"extra": pred["scene0"]}, ".jpg")
    result, matched = evaluate_folders({"--pred": tmp_path / "pred", "--real": tmp_path / "real"},
                                       ["l1", "psnr"], host, device="cpu")
    unit = {k: v.astype(np.float64) / 127.5 - 1 for k, v in real.items()}
    out = {k: v.astype(np.float64) / 127.5 - 1 for k, v in pred.items()}
    l1 = np.mean([np.abs(out[k] - unit[k]).mean() for k in real])
    assert result.items == 3 and [stem for stem, _ in matched.pairs] == ["scene0", "scene1", "scene2"]
    assert [p.name for p in matched.unmatched["--pred"]] == ["extra.jpg"] and matched.unmatched["--real"] == []
    assert result.figures["eval/l1"] == pytest.approx(l1, rel=1e-6)
    assert math.isfinite(result.figures["eval/psnr"]) and result.higher_is_better["eval/psnr"]


def test_identical_folders_score_perfectly(tmp_path, host):
    write_images(tmp_path / "real", scenes(2))
    write_images(tmp_path / "pred", scenes(2))
    result, _ = evaluate_folders({"--pred": tmp_path / "pred", "--real": tmp_path / "real"}, ["l1", "ssim"], host,
                                 device="cpu")
    assert result.figures["eval/l1"] == 0 and result.figures["eval/ssim"] == pytest.approx(1.0, abs=1e-6)


def test_mistakes_name_the_file_and_the_option(tmp_path, host):
    write_images(tmp_path / "real", scenes(3))
    write_images(tmp_path / "small", scenes(3, size=(16, 16)))
    write_images(tmp_path / "other", {"elsewhere": scenes(3)["scene0"]})
    folders = {"--pred": tmp_path / "small", "--real": tmp_path / "real"}
    with pytest.raises(P2PError, match="same size") as error:
        evaluate_folders(folders, ["l1"], host, device="cpu")
    assert error.value.file == str(tmp_path / "real" / "scene0.png") and error.value.key == "--real"
    with pytest.raises(P2PError, match="no image name is in every folder"):
        evaluate_folders({"--pred": tmp_path / "other", "--real": tmp_path / "real"}, ["l1"], host, device="cpu")
    with pytest.raises(P2PError, match="not a folder"):
        evaluate_folders({"--pred": tmp_path / "missing", "--real": tmp_path / "real"}, ["l1"], host, device="cpu")
    with pytest.raises(P2PError, match="unknown metric"):
        evaluate_folders({"--pred": tmp_path / "real", "--real": tmp_path / "real"}, ["psnrr"], host, device="cpu")


def test_the_command_scores_folders_lists_the_unmatched_and_refuses_a_checkpoint_too(tmp_path):
    from typer.testing import CliRunner

    from p2pcore.cli import app

    write_images(tmp_path / "real", scenes(4))
    write_images(tmp_path / "pred", {**scenes(5), "lonely": scenes(5)["scene0"]})
    runner = CliRunner()
    done = runner.invoke(app, ["eval", "--pred", str(tmp_path / "pred"), "--real", str(tmp_path / "real"),
                               "--metric", "psnr", "--device", "cpu", "--out", str(tmp_path / "scores")])
    assert done.exit_code == 0, done.output
    assert "lonely.png" in done.output and "eval/psnr" in done.output
    assert (tmp_path / "scores" / "pred_vs_real.json").is_file()
    done = runner.invoke(app, ["eval", "ckpt.safetensors", "--pred", str(tmp_path / "pred"),
                               "--real", str(tmp_path / "real")])
    assert isinstance(done.exception, P2PError) and "one or the other" in done.exception.message
    done = runner.invoke(app, ["eval", "--pred", str(tmp_path / "pred")])
    assert isinstance(done.exception, P2PError) and "--pred and --real go together" in done.exception.message
