"""RUN_DIR/report.html: curves, sample grids, evaluation table, escaped recipe and components, written from
run directories that are complete, half-written or long; `p2p report`; the page in a headless browser."""

from __future__ import annotations

import html
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_without_torch
from PIL import Image
from typer.testing import CliRunner

from p2pcore.cli import app
from p2pcore.report import write_report
from p2pcore.report.charts import group
from p2pcore.report.runlog import downsample, read_log
from p2pcore.report.svg import nice_ticks, tick_labels

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = '<script>alert("x")</script> & </pre>'
PATH = re.compile(r'<path class="series" data-series="([^"]*)" d="([^"]*)"')


def training_line(step: int, epoch: float) -> dict:
    return {"step": step, "epoch": epoch, "time": 1000.0 + step, "G/gan": 0.7 + 0.01 * math.sin(step),
            "G/l1": 0.4 - 0.001 * step, "G/total": 40.0 - 0.1 * step, "D/gan": 0.69 - 0.002 * step,
            "D/total": 0.69 - 0.002 * step, "lr": 2e-4, "skipped_files": 0, "skipped_steps": 0}


def evaluation(epoch: int) -> dict:
    return {"epoch": epoch, "step": 4 * epoch, "split": "test", "items": 8,
            "metrics": {"eval/psnr": 13.0 + 0.37 * epoch + 0.5 * (epoch == 2), "eval/ssim": 0.2 + 0.013 * epoch,
                        "eval/fcn_score/pixel_accuracy": None},
            "higher_is_better": {"eval/psnr": True, "eval/ssim": True, "eval/fcn_score/pixel_accuracy": True}}


def write_run(folder: Path, epochs: int = 3, steps_per_epoch: int = 4, sample_size: int = 24) -> list[dict]:
    """A run directory as `p2p run` leaves it mid-training: no checkpoint, the log's last line cut short."""
    (folder / "samples").mkdir(parents=True)
    (folder / "eval").mkdir()
    (folder / "recipe.toml").write_text(f'name = "tiny"\ntask = "pix2pix"\n\n[data]\nname = "synthetic_thermal"\n'
                                        f'root = {json.dumps(HOSTILE)}\n')
    records = []
    for epoch in range(1, epochs + 1):
        for step in range((epoch - 1) * steps_per_epoch + 2, epoch * steps_per_epoch + 1, 2):
            records.append(training_line(step, step / steps_per_epoch))
        step = epoch * steps_per_epoch
        records.append({"step": step, "epoch": epoch, "time": 2000.0 + step, "samples/l1": 0.4 - 0.01 * epoch})
        result = evaluation(epoch)
        records.append({"step": step, "epoch": epoch, "time": 2001.0 + step, **result["metrics"]})
        (folder / "eval" / f"epoch_{epoch:03d}.json").write_text(json.dumps(result))
        shade = 40 + 60 * epoch % 200
        Image.new("RGB", (sample_size * 3 + epoch, sample_size * 2), (shade, 90, 200 - shade // 2)).save(
            folder / "samples" / f"epoch_{epoch:03d}.png")
    best = max(range(1, epochs + 1), key=lambda e: evaluation(e)["metrics"]["eval/psnr"])
    (folder / "eval" / "best.json").write_text(json.dumps(
        {"metric": "eval/psnr", "epoch": best, "value": evaluation(best)["metrics"]["eval/psnr"]}))
    text = "".join(json.dumps(r) + "\n" for r in records)
    (folder / "metrics.jsonl").write_text(text + json.dumps(training_line(10**6, 99.0))[:40])
    return records


def series_keys(records: list[dict]) -> set[str]:
    return {k for r in records for k, v in r.items() if k not in ("step", "epoch", "time") and v is not None}


def fake_checkpoint(path: Path, components: list[dict]) -> None:
    """A tensor-free file in the checkpoint format: the header alone, as `read_header` validates it."""
    meta = {"format": "p2p.checkpoint", "format_version": "1", "recipe": json.dumps({"task": "pix2pix"}),
            "components": json.dumps(components), "p2p_version": json.dumps("9.9.9"), "step": "12", "epoch": "3"}
    header = json.dumps({"__metadata__": meta}).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(header)) + header)


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, list[dict]]:
    folder = tmp_path / "run"
    return folder, write_run(folder)


def test_page_has_a_curve_per_series_the_tables_and_the_escaped_recipe(run):
    folder, records = run
    path = write_report(folder)
    assert path == folder / "report.html"
    page = path.read_text()
    paths = {html.unescape(key): d for key, d in PATH.findall(page)}
    assert set(paths) == series_keys(records)
    steps = {key: sum(1 for r in records if r.get(key) is not None) for key in paths}
    for key, d in paths.items():
        assert d.startswith("M") and d.count("L") == steps[key] - 1, key
    latest = json.loads((folder / "eval" / "epoch_003.json").read_text())
    best = json.loads((folder / "eval" / "best.json").read_text())
    assert best["epoch"] != latest["epoch"]
    for key, value in latest["metrics"].items():
        assert f"<td>{html.escape(key)}</td>" in page
        if value is not None:
            assert f">{value:#.4g}</td>" in page  # four significant digits, trailing zeros kept (0.2390)
    marked = re.findall(r'<td class="best num">([^<]*)</td>', page)
    assert marked == [f"{best['value']:#.4g} ★"]
    assert f"epoch {best['epoch']} (best checkpoint)" in page and f"epoch {latest['epoch']} (latest)" in page
    assert HOSTILE not in page and html.escape(json.dumps(HOSTILE)) in page
    assert page.count("<script") == 1
    assert 'src="samples/epoch_003.png"' in page
    frames = json.loads(html.unescape(re.search(r'data-frames="([^"]*)"', page).group(1)))
    assert [f["src"] for f in frames] == [f"samples/epoch_{e:03d}.png" for e in (1, 2, 3)]
    assert "no checkpoint yet" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page), "the page must load nothing from the network"


def test_a_cut_short_line_is_skipped_and_counted(run):
    folder, records = run
    log = read_log(folder / "metrics.jsonl")
    assert log.lines == len(records) and log.unreadable == 1
    assert log.step == records[-1]["step"] and log.epoch == records[-1]["epoch"]
    assert len(log.series["G/l1"]) == sum("G/l1" in r for r in records)


def test_missing_parts_are_left_out(tmp_path):
    folder = tmp_path / "starting"
    folder.mkdir()
    (folder / "recipe.toml").write_text('name = "starting"\n')
    page = write_report(folder).read_text()
    assert "nothing logged yet" in page and "no sample grids yet" in page and "<svg" not in page
    assert "Evaluation" not in page and "<h1>starting</h1>" in page
    (folder / "metrics.jsonl").write_text('{"step": 2, "epoch": 0.5, "G/l1": 0.4')  # the first line, half written
    (folder / "eval").mkdir()
    (folder / "eval" / "epoch_001.json").write_text('{"epoch": 1, "metr')
    assert "nothing logged yet" in write_report(folder).read_text()
    (folder / "eval" / "epoch_002.json").write_text(json.dumps(
        {"epoch": [2], "metrics": {"eval/psnr": "high", "eval/l1": [1]}, "higher_is_better": [True]}))
    (folder / "eval" / "best.json").write_text(json.dumps({"metric": ["eval/psnr"], "epoch": {}}))
    page = write_report(folder).read_text()
    assert "<td>eval/psnr</td>" in page and 'class="best' not in page
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")] == []


def test_components_come_from_the_checkpoint_header(run):
    folder, _ = run
    components = [{"kind": "generator", "name": "unet", "qualified_name": "p2pcore:unet", "distribution": "p2pcore",
                   "version": "0.1.0"},
                  {"kind": "norm", "name": "odd<b>", "qualified_name": "x:odd<b>", "distribution": "x-plugin",
                   "version": "2.3"}]
    fake_checkpoint(folder / "checkpoints" / "latest.safetensors", components)
    page = write_report(folder).read_text()
    for c in components:
        row = "".join(f"<td>{html.escape(c[k])}</td>" for k in ("kind", "name", "distribution", "version"))
        assert row in page
    assert "odd<b>" not in page and "p2p 9.9.9" in page
    (folder / "checkpoints" / "latest.safetensors").write_bytes(b"\x10\x00")
    assert "could not be read" in write_report(folder).read_text()


def test_charts_keep_scales_apart_and_directions_together():
    points = [(1.0, 1.0), (2.0, 2.0)]
    keys = ["G/gan", "G/l1", "G/total", "D/gan", "D/total", "samples/a2b/l1", "samples/b2a/l1", "eval/a2b/psnr",
            "eval/b2a/psnr", "eval/a2b/fcn_score/iou", "eval/psnr", "lr", "skipped_files", "extra"]
    charts = {c.title: set(c.series) for c in group(dict.fromkeys(keys, points))}
    assert sorted(k for keys_ in charts.values() for k in keys_) == sorted(keys)
    by_key = {k: title for title, ks in charts.items() for k in ks}
    assert by_key["G/total"] not in (by_key["G/gan"], by_key["D/total"])
    assert by_key["D/total"] == by_key["D/gan"]  # a single-term side: its total is that term
    assert by_key["eval/a2b/psnr"] == by_key["eval/b2a/psnr"] == by_key["eval/psnr"]
    assert by_key["eval/a2b/fcn_score/iou"] != by_key["eval/a2b/psnr"]
    assert by_key["samples/a2b/l1"] == by_key["samples/b2a/l1"] != by_key["lr"]
    assert list(charts)[0] == by_key["G/gan"]


def test_downsampling_keeps_the_ends_and_spikes():
    points = [(i / 100, 1.0 + (i % 7) * 0.01) for i in range(20_000)]
    points[12_345] = (123.45, 50.0)
    points[6_000] = (60.0, -3.0)
    kept = downsample(points, 1000)
    assert len(kept) <= 1000 and kept[0] == points[0] and kept[-1] == points[-1]
    assert (123.45, 50.0) in kept and (60.0, -3.0) in kept
    assert [p[0] for p in kept] == sorted(p[0] for p in kept)
    assert downsample(points[:10], 1000) == points[:10]


@pytest.mark.parametrize("low,high", [(0.0, 3.0), (0.32, 0.36), (13.9, 14.2), (2e-4, 2e-4), (-5.0, 120.0),
                                      (1e-7, 3e-6), (6.6e-5, 2e-4), (0.0, 2e6)])
def test_ticks_are_round_evenly_spaced_and_cover_the_range(low, high):
    ticks = nice_ticks(low, high)
    assert ticks[0] <= low and ticks[-1] >= high and 3 <= len(ticks) <= 12
    steps = {round(b - a, 12) for a, b in zip(ticks, ticks[1:], strict=False)}
    assert len(steps) == 1
    labels = tick_labels(ticks)
    assert len(set(labels)) == len(labels) and all(abs(float(s) - t) <= 1e-9 + abs(t) * 1e-2
                                                   for s, t in zip(labels, ticks, strict=True))


def test_a_long_run_is_fast_and_small(tmp_path):
    folder = tmp_path / "long"
    records = write_run(folder, epochs=200, steps_per_epoch=200, sample_size=4)
    assert sum("G/l1" in r for r in records) >= 20_000
    started = time.process_time()  # this process's CPU time: other processes on a shared machine do not count
    page = write_report(folder).read_text()
    elapsed = time.process_time() - started
    assert elapsed < 1.0, f"{elapsed:.2f} s of CPU"
    counts = [d.count("L") + 1 for _, d in PATH.findall(page)]
    assert len(counts) == len(series_keys(records)) and max(counts) <= 1000
    assert len(page) < 1_500_000


def test_cli_writes_the_report_without_torch(run):
    folder, _ = run
    done = run_without_torch(["report", str(folder)])
    assert done.returncode == 0, done.stderr[-2000:]
    assert (folder / "report.html").is_file() and "report.html" in done.stdout
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0


def test_cli_refuses_a_missing_folder_on_one_screen(tmp_path):
    done = subprocess.run([sys.executable, "-m", "p2pcore", "report", str(tmp_path / "nope")], capture_output=True,
                          text=True, cwd=ROOT, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 2
    assert "error" in done.stderr and "nope" in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.splitlines()) <= 10
    (tmp_path / "other").mkdir()
    done = subprocess.run([sys.executable, "-m", "p2pcore", "report", str(tmp_path / "other")], capture_output=True,
                          text=True, cwd=ROOT)
    assert done.returncode == 2 and "not a run directory" in done.stderr
    assert not (tmp_path / "other" / "report.html").exists()


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


def test_the_page_in_a_headless_browser(run):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
    folder, records = run
    url = write_report(folder).as_uri()
    flat = {k for k in series_keys(records) if len({r[k] for r in records if r.get(k) is not None}) == 1}
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 900})
            messages: list[tuple[str, str]] = []
            requests: list[str] = []
            page.on("console", lambda m: messages.append((m.type, m.text)))
            page.on("pageerror", lambda e: messages.append(("error", str(e))))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="load")
            boxes = page.evaluate("""() => Array.from(document.querySelectorAll("svg path.series")).map(p => {
                const box = p.getBBox();
                return [p.dataset.series, p.getAttribute("d").length, box.width, box.height]; })""")
            assert {b[0] for b in boxes} == series_keys(records)
            for key, length, width, height in boxes:
                assert length > 1 and width > 0, key
                assert height > 0 or key in flat, key
            image = page.locator(".frame img")
            assert image.evaluate("img => img.complete && img.naturalWidth") == 3 * 24 + 3
            page.focus("#epoch-slider")
            page.keyboard.press("Home")
            assert image.get_attribute("src") == "samples/epoch_001.png"
            assert page.locator(".samples output").inner_text().startswith("epoch 1 ")
            page.wait_for_function("document.querySelector('.frame img').naturalWidth === 3 * 24 + 1")
            shot = Image.open(io.BytesIO(page.screenshot(full_page=True))).convert("RGB")
        finally:
            browser.close()
    assert [m for m in messages if m[0] == "error"] == []
    assert all(u.startswith(("file:", "data:")) for u in requests), requests
    assert any(low != high for low, high in shot.getextrema())
    assert shot.size[1] > 900


def test_a_run_with_a_report_is_still_a_run_to_resume_not_a_foreign_folder(run):
    from p2pcore.errors import P2PError
    from p2pcore.rundir import check_run_dir

    folder, _ = run
    write_report(folder)
    with pytest.raises(P2PError, match="already holds a run"):
        check_run_dir(folder, resume=False)
    check_run_dir(folder, resume=True)
