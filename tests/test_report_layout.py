"""The report's layout rules: which series share a plot, the y-axis titles and their units, the precision
numbers are shown with, and the sample grid's column headers from the task's visuals."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from p2pcore.report import write_report
from p2pcore.report.charts import CONSTANT_TITLE, comparable, group, split
from p2pcore.report.numbers import figure, number
from p2pcore.report.svg import render
from p2pcore.report.units import axis_title
from p2pcore.report.visuals import grid_columns


def line(start: float, end: float, n: int = 8) -> list[tuple[float, float]]:
    return [(1 + i, start + (end - start) * i / (n - 1)) for i in range(n)]


def charts_of(series: dict) -> dict[str, set[str]]:
    return {c.title: set(c.series) for c in group(series)}


def chart_with(series: dict, key: str):
    return next(c for c in group(series) if key in c.series)


# -- which series share a plot ---------------------------------------------------------------------------

def test_a_term_that_moves_little_gets_its_own_plot_beside_one_that_moves_much():
    series = {"G/gan": line(0.75, 1.5), "G/l1": line(0.4, 0.3), "G/total": line(40, 30)}
    gan, l1 = chart_with(series, "G/gan"), chart_with(series, "G/l1")
    assert gan is not l1 and set(gan.series) == {"G/gan"} and set(l1.series) == {"G/l1"}
    assert gan.title == "G losses (gan)" and l1.title == "G losses (l1)"


def test_terms_on_comparable_ranges_share_a_plot():
    series = {"G/gan_a": line(1.0, 0.4), "G/gan_b": line(0.9, 0.3), "G/cycle_a": line(0.5, 0.25)}
    assert charts_of(series) == {"G losses": {"G/gan_a", "G/gan_b", "G/cycle_a"}}


@pytest.mark.parametrize("ranges,together", [
    ([(0.75, 1.5, True), (0.3, 0.4, True)], False),        # 0.1 of a 1.2 range: drawn flat
    ([(0.3, 1.0, True), (0.25, 0.5, True)], True),
    ([(0.3, 1.0, True), (0.5, 0.5, False)], True),          # a constant or a single point is never flattened
    ([(0.0, 0.02, True), (100.0, 100.0, False)], False),    # but it must not flatten the changing one
    ([(13.4, 13.4, False), (0.2, 0.2, False)], True),       # single points alone: nothing to flatten
])
def test_series_share_an_axis_when_each_changing_one_spans_a_fair_share(ranges, together):
    assert comparable(ranges) is together


def test_a_single_term_sides_total_is_dashed_over_its_term_not_hidden_beneath_it():
    points = line(0.7, 0.3)
    series = {"D/gan": points, "D/total": list(points), "G/gan": line(1, 2), "G/l1": line(0.5, 0.1)}
    chart = chart_with(series, "D/total")
    assert set(chart.series) == {"D/gan", "D/total"} and chart.same == {"D/total": "D/gan"}
    assert chart.title == "D losses" and chart.y_label == "loss (unweighted)"
    svg = render(chart)
    assert re.search(r'data-series="D/total" d="[^"]*" stroke="[^"]*" stroke-dasharray=', svg)
    assert "D/total (= D/gan)" in svg
    assert not re.search(r'data-series="D/gan" d="[^"]*" stroke="[^"]*" stroke-dasharray=', svg)


def test_unchanging_series_fold_into_one_short_strip_at_the_end():
    series = {"G/gan": line(1, 2), "lr": line(2e-4, 2e-4), "skipped_files": line(0, 0),
              "skipped_steps": line(0, 0), "eval/psnr": [(1.0, 13.0)]}
    charts = group(series)
    strip = charts[-1]
    assert strip.constant and strip.title == CONSTANT_TITLE
    assert set(strip.series) == {"lr", "skipped_files", "skipped_steps"}
    assert all(not c.constant for c in charts[:-1]) and len(charts) == 3  # a single point is not "unchanged"
    svg = render(strip)
    assert svg.count('class="series"') == 3 and "= 0<" in svg and "= 2.000e-04<" in svg
    assert 'class="y-title"' not in svg and len(svg) < 3000
    assert int(re.search(r'viewBox="0 0 \d+ (\d+)"', svg).group(1)) < 140  # a short strip, not a full plot
    assert all(not c.constant for c in group({"lr": line(2e-4, 1e-4)}))


def test_a_constant_series_stays_as_a_reference_line_beside_changing_ones_it_does_not_flatten():
    series = {"eval/fcn_score/iou": line(0.1, 0.3), "eval/fcn_score/real/iou": line(0.35, 0.35)}
    assert charts_of(series) == {"eval: fcn_score": set(series)}


def test_split_keeps_log_order_and_names_the_parts_a_plot_shows():
    series = {"eval/a2b/lab/L": line(0.54, 0.6), "eval/a2b/lab/a": line(0.545, 0.552),
              "eval/b2a/lab/L": line(0.55, 0.59)}
    plots = split(series)
    assert [keys for keys, _ in plots] == [["eval/a2b/lab/L", "eval/b2a/lab/L"], ["eval/a2b/lab/a"]]
    titles = [c.title for c in group(series)]
    assert titles == ["eval: lab (a2b/L, b2a/L)", "eval: lab (a2b/a)"]


# -- axis titles and units -------------------------------------------------------------------------------

@pytest.mark.parametrize("key,title", [
    ("eval/psnr", "PSNR (dB)"), ("eval/a2b/psnr", "PSNR (dB)"), ("eval/ssim", "SSIM (unitless)"),
    ("eval/l1", "L1, pixels in [-1, 1]"), ("samples/b2a/l1", "L1, pixels in [-1, 1]"),
    ("eval/lab_histogram_intersection/L", "intersection (0 to 1)"), ("G/l1", "loss (unweighted)"),
    ("D/total", "loss (weighted sum)"), ("lr", "learning rate"), ("skipped_files", "count"),
    ("data_time", "data_time (s)"), ("eval/my_metric", "my_metric"), ("custom/thing", "custom/thing"),
])
def test_axis_titles_carry_units_and_unknown_keys_their_bare_name(key, title):
    assert axis_title(key, {"a2b", "b2a"}) == title


def test_every_plot_has_a_y_axis_title():
    series = {"G/gan": line(1, 2), "eval/psnr": line(13, 14), "eval/ssim": line(0.1, 0.2), "lr": line(2e-4, 0)}
    for chart in group(series):
        assert chart.y_label
        assert 'class="y-title"' in (svg := render(chart)) and f">{html.escape(chart.y_label)}</text>" in svg
    assert chart_with(series, "eval/psnr").y_label == "PSNR (dB)"


# -- numbers ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value,text", [
    (0.84, "0.8400"), (0.8397, "0.8397"), (14.1, "14.10"), (40.352501, "40.35"), (1.0, "1.000"),
    (2e-4, "2.000e-04"), (123456.0, "1.235e+05"), (0, "0.000"), (None, "–"), (float("nan"), "–"),
])
def test_numbers_have_four_significant_digits_and_keep_trailing_zeros(value, text):
    assert number(value) == text


def test_counters_are_shown_as_whole_numbers_and_whole_figures_keep_their_digits():
    assert figure(3.0, "skipped_steps") == "3" and figure(0.0, "skipped_files") == "0"
    assert figure(15.0, "eval/psnr") == "15.00" and figure(None, "skipped_files") == "–"


# -- the sample grid's columns ---------------------------------------------------------------------------

@pytest.mark.parametrize("task,names,roles", [
    ("pix2pix", ["real_a", "fake_b", "real_b"], ["input · image a", "output · image b", "target · image b"]),
    ({"name": "cyclegan"}, ["real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b"],
     ["input a2b · image a", "output a2b · image b", "generated · image a", "input b2a · image b",
      "output b2a · image a", "generated · image b"]),
    ({"name": "pix2pixhd", "label_nc": 35}, ["label", "fake_b", "real_b"],
     ["input · label map", "output · image b", "target · image b"]),
])
def test_grid_columns_come_from_the_tasks_visuals(host, task, names, roles):
    found = grid_columns({"task": task}, host)
    assert [c.name for c in found.columns] == names and [c.role for c in found.columns] == roles
    assert found.note == ""


def test_an_unknown_task_gets_no_headers_and_says_why(host):
    found = grid_columns({"task": "no_such_task"}, host)
    assert found.columns == [] and "no_such_task" in found.note
    assert grid_columns({}, host).note == "the recipe names no task"
    assert "could not be resolved" in grid_columns({"task": {"name": "pix2pix", "bogus": 1}}, host).note


def write_cyclegan_run(folder: Path) -> None:
    (folder / "samples").mkdir(parents=True)
    (folder / "recipe.toml").write_text('name = "cyc"\n\n[task]\nname = "cyclegan"\n')
    records = [{"step": 2 * e, "epoch": e, "time": 1.0 * e, "G/gan_a": 1.0 / e, "eval/a2b/psnr": 12.0 + e,
                "lr": 2e-4, "skipped_files": 0} for e in (1, 2, 3)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    Image.new("RGB", (6 * 18 + 2, 2 * 18 + 2), (90, 90, 90)).save(folder / "samples" / "epoch_003.png")


def test_the_page_names_the_grid_columns_and_the_units(tmp_path):
    folder = tmp_path / "run"
    write_cyclegan_run(folder)
    page = write_report(folder).read_text()
    heads = re.findall(r'<div class="column"><b>([^<]*)</b><span>([^<]*)</span></div>', page)
    assert [h[0] for h in heads] == ["real_a", "fake_b", "rec_a", "real_b", "fake_a", "rec_b"]
    assert "--columns: 6" in page
    assert "real_a | fake_b | rec_a | real_b | fake_a | rec_b" in page
    assert "input | output | target" not in page
    assert ">PSNR (dB)</text>" in page and ">loss (unweighted)</text>" in page
    assert CONSTANT_TITLE in page
    values = dict(re.findall(r"<tr><td>([^<]*)</td><td class=\"num\">([^<]*)</td>", page))
    assert values == {"G/gan_a": "0.3333", "eval/a2b/psnr": "15.00", "lr": "2.000e-04", "skipped_files": "0"}
    controls, stage = page.index('class="controls"'), page.index('class="stage"')
    assert controls < page.index('id="epoch-slider"') < stage  # the slider sits in the column beside the grid


def test_a_page_for_a_task_that_is_not_installed_still_shows_its_grids(tmp_path):
    folder = tmp_path / "run"
    write_cyclegan_run(folder)
    (folder / "recipe.toml").write_text('task = "gone_task"\n')
    page = write_report(folder).read_text()
    assert 'class="columns"' not in page and "samples/epoch_003.png" in page
    assert "the task could not be resolved" in page


def test_an_eval_plot_says_which_way_is_better_as_the_metric_declared_it(tmp_path):
    folder = tmp_path / "run"
    write_cyclegan_run(folder)
    (folder / "eval").mkdir()
    (folder / "eval" / "epoch_003.json").write_text(json.dumps(
        {"epoch": 3, "metrics": {"eval/a2b/psnr": 15.0}, "higher_is_better": {"eval/a2b/psnr": True}}))
    page = write_report(folder).read_text()
    assert "<figcaption>eval: psnr <span>(higher is better ↑)</span></figcaption>" in page
    assert "<figcaption>G losses</figcaption>" in page
