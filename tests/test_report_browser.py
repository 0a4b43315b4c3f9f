"""The report of two tiny trained runs (pix2pix, CycleGAN) as headless Chromium renders it: the grid's column
headers from the task's visuals, the axis titles with their units, a screenshot, and the grid filling its
card beside the epoch slider. Skips without a Chromium (Debian: apt-get install chromium); CI installs one."""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import pytest
from conftest import one_torch_thread
from PIL import Image

from p2pcore.report import write_report

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no Chromium at {CHROMIUM} (Debian: apt-get install chromium)")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]
COLUMNS = {"pix2pix": ["real_a", "fake_b", "real_b"],
           "cyclegan": ["real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b"]}
UNITS = {"pix2pix": ["PSNR (dB)", "SSIM (unitless)", "L1, pixels in [-1, 1]", "loss (unweighted)",
                     "loss (weighted sum)", "learning rate"],
         "cyclegan": ["intersection (0 to 1)", "loss (unweighted)", "loss (weighted sum)", "learning rate"]}


def tiny_recipe(host, task: str) -> dict:
    """The task's quickstart shrunk to a few seconds of CPU: 32 px scenes, the smallest networks, two epochs."""
    from p2pcore.recipe import load_recipe

    name = {"pix2pix": "quickstart.toml", "cyclegan": "quickstart_cyclegan.toml"}[task]
    data = load_recipe(ROOT / "recipes" / name, host).to_toml_dict()
    data["data"].update(size=32, train_count=8, test_count=2)
    if task == "pix2pix":
        data["model"]["generator"].update(depth=5, ngf=8)
        data["model"]["discriminator"].update(ndf=8)
        data["eval"].update(metrics=["l1", "psnr", "ssim"])
    else:
        for role in ("generator_ab", "generator_ba"):
            data["model"][role].update(ngf=8, n_blocks=1)
        for role in ("discriminator_a", "discriminator_b"):
            data["model"][role].update(ndf=8)
    data["schedule"].update(decay_epochs=1)
    data["train"].update(epochs=2, batch_size=2, num_workers=0, log_every=1, sample_count=2, device="cpu")
    return data


one_thread = pytest.fixture(scope="module")(one_torch_thread)


@pytest.fixture(scope="module")
def reports(host, tmp_path_factory, one_thread) -> dict[str, Path]:
    """report.html of a tiny pix2pix and a tiny CycleGAN run, trained here on one thread (seconds, where
    several threads on a busy machine take minutes)."""
    from p2pcore.engine.train.trainer import Trainer
    from p2pcore.recipe import validate_recipe

    root = tmp_path_factory.mktemp("runs")
    pages = {}
    for task in COLUMNS:
        Trainer(validate_recipe(tiny_recipe(host, task), host, default_name=task), host, root / task).fit()
        pages[task] = write_report(root / task)
    return pages


def chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    profile = tmp / "profile"
    return subprocess.run([CHROMIUM, *BROWSER_ARGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120)


def rendered_dom(page: Path, tmp: Path, width: int = 1280, height: int = 900) -> str:
    """The document after the page's script ran (the grid's size is set once its image has loaded)."""
    done = chromium(f"--window-size={width},{height}", "--virtual-time-budget=5000", "--dump-dom",
                    page.as_uri(), tmp=tmp)
    assert done.returncode == 0 and "</html>" in done.stdout, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("task", list(COLUMNS))
def test_the_rendered_page_names_the_grid_columns_and_the_units(reports, task, tmp_path):
    dom = rendered_dom(reports[task], tmp_path)
    heads = [unescape(h) for h in re.findall(r'<div class="column"><b>([^<]*)</b>', dom)]
    assert heads == COLUMNS[task]
    caption = " | ".join(COLUMNS[task])
    assert f"columns are the {task} task's visuals: {caption}" in unescape(dom)
    assert "input | output | target" not in dom
    titles = {unescape(t) for t in re.findall(r'<text class="y-title"[^>]*>([^<]*)</text>', dom)}
    assert set(UNITS[task]) <= titles, titles
    width = re.search(r'<img [^>]*style="width: ([\d.]+)px;?"', dom)
    assert width is not None, "the page's script did not size the sample grid"
    natural = Image.open(reports[task].parent / "samples" / "epoch_002.png").size
    assert float(width.group(1)) >= 4 * natural[0]  # enlarged to its card, not left at its own 70-200 px


@pytest.mark.parametrize("task", list(COLUMNS))
def test_a_screenshot_of_the_page(reports, task, tmp_path):
    shot = tmp_path / f"{task}.png"
    done = chromium("--window-size=1280,2000", f"--screenshot={shot}", reports[task].as_uri(), tmp=tmp_path)
    assert done.returncode == 0 and shot.is_file(), done.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2000)
    assert len(image.getcolors(1 << 16) or range(1 << 16)) > 50  # curves and text, not a blank page


def test_the_grid_fills_its_card_beside_the_slider_that_stays_in_view(reports):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install -e .[dev])")
    box = """s => { const b = document.querySelector(s).getBoundingClientRect();
                    return {x: b.x, y: b.y, w: b.width, h: b.height}; }"""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS[1:])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(reports["cyclegan"].as_uri(), wait_until="load")
            page.wait_for_function("document.querySelector('.frame img').style.width !== ''")
            page.evaluate("document.querySelector('#samples').scrollIntoView()")
            slider, image, stage = (page.evaluate(box, s) for s in ("#epoch-slider", ".frame img", ".stage"))
            heads = [page.evaluate(box, f".column:nth-child({i + 1})") for i in range(6)]
            page.mouse.wheel(0, 250)
            page.wait_for_timeout(100)
            scrolled = page.evaluate(box, "#epoch-slider")
            narrow = browser.new_page(viewport={"width": 600, "height": 900})
            narrow.goto(reports["cyclegan"].as_uri(), wait_until="load")
            narrow_slider, narrow_image = (narrow.evaluate(box, s) for s in ("#epoch-slider", ".frame img"))
        finally:
            browser.close()
    assert slider["x"] + slider["w"] <= image["x"] and slider["y"] < image["y"] + image["h"]  # side by side
    assert image["w"] >= 0.9 * stage["w"], (image, stage)  # six columns: as wide as the card allows
    for i, head in enumerate(heads):  # each header over its column of the image
        centre = head["x"] + head["w"] / 2
        assert abs(centre - (image["x"] + (i + 0.5) * image["w"] / 6)) < image["w"] / 24, (i, head, image)
        assert head["y"] + head["h"] <= image["y"] + 1
    assert 0 <= scrolled["y"] < 900  # sticky: still in view after scrolling down the grid
    assert narrow_slider["y"] < narrow_image["y"] and narrow_image["w"] > 450  # narrow: above, full width
