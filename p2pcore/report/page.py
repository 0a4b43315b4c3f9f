"""The report page: one HTML document assembled from what was read, every run-supplied string escaped."""

from __future__ import annotations

import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from html import escape
from typing import Any
from urllib.parse import quote

from p2pcore.report import assets, svg
from p2pcore.report.charts import Chart
from p2pcore.report.numbers import figure, number
from p2pcore.report.runlog import RunLog
from p2pcore.report.sources import Components, Evaluations, Recipe
from p2pcore.report.visuals import GridColumns


@dataclass
class RunView:
    """Everything the page shows, read from one run directory."""

    folder: str
    log: RunLog
    charts: list[Chart]
    frames: list[tuple[int, str]]
    evaluations: Evaluations
    components: Components
    recipe: Recipe
    columns: GridColumns


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>'


def _table(head: list[str], rows: list[list[Any]], numeric: Collection[int] = ()) -> str:
    """A table of already-escaped cells (a cell may be a `(html, class)` pair)."""
    def cell(tag: str, i: int, value: Any) -> str:
        text, cls = value if isinstance(value, tuple) else (value, "")
        classes = " ".join(c for c in (cls, "num" if i in numeric else "") if c)
        attribute = f' class="{classes}"' if classes else ""
        return f"<{tag}{attribute}>{text}</{tag}>"

    header = "".join(cell("th", i, h) for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></div>'


def header(view: RunView) -> str:
    values = view.recipe.values
    title = values.get("name") if isinstance(values.get("name"), str) and values.get("name") else view.folder
    task, data = values.get("task"), values.get("data", {})
    task_name = task if isinstance(task, str) else task.get("name") if isinstance(task, dict) else None
    data_name = data.get("name") if isinstance(data, dict) else None
    subtitle = " · ".join(escape(str(x)) for x in (task_name, data_name) if x)
    epoch = f"{view.log.epoch:g}" if view.log.epoch is not None else "–"
    facts = [("epoch", epoch), ("step", str(view.log.step) if view.log.step is not None else "–"),
             ("log lines", str(view.log.lines)), ("folder", escape(view.folder)),
             ("written", time.strftime("%Y-%m-%d %H:%M:%S"))]
    if view.log.unreadable:
        facts.append(("unreadable log lines", str(view.log.unreadable)))
    items = "".join(f"<li>{name} <b>{value}</b></li>" for name, value in facts)
    return (f"<header><h1>{escape(str(title))}</h1><p>{subtitle or 'p2p run'}</p>"
            f'<ul class="facts">{items}</ul></header>')


def _directions(found: Evaluations) -> dict[str, bool]:
    """Which way each evaluation figure is better, as the metrics declared it (in the evaluation files)."""
    out: dict[str, bool] = {}
    for e in (found.at_best, found.latest):
        if e is not None and isinstance(e.get("higher_is_better"), dict):
            out.update((k, v) for k, v in e["higher_is_better"].items() if isinstance(v, bool))
    return out


def curves(view: RunView) -> str:
    if not view.charts:
        return _section("Curves", '<p class="note">nothing logged yet (metrics.jsonl is empty or missing)</p>',
                        "curves")
    better = _directions(view.evaluations)

    def caption(chart: Chart) -> str:
        if chart.constant:
            return f"{escape(chart.title)} <span>(the same value at every logged step)</span>"
        ways = {better.get(key) for key in chart.series if key not in chart.same}
        way = {True: " <span>(higher is better ↑)</span>", False: " <span>(lower is better ↓)</span>"}
        return escape(chart.title) + (way[ways.pop()] if len(ways) == 1 and None not in ways else "")

    strip = ' class="strip"'
    figures = "".join(f"<figure{strip if chart.constant else ''}><figcaption>{caption(chart)}"
                      f"</figcaption>{svg.render(chart)}</figure>" for chart in view.charts)
    return _section("Curves", f'<div class="charts">{figures}</div>', "curves")


def _headers(grid: GridColumns) -> str:
    """The grid's column headers, laid over the image's columns (the page's script sizes them with it)."""
    if not grid.columns:
        return ""
    cells = "".join(f'<div class="column"><b>{escape(c.name)}</b><span>{escape(c.role)}</span></div>'
                    for c in grid.columns)
    return f'<div class="columns" style="--columns: {len(grid.columns)}">{cells}</div>'


def _caption(grid: GridColumns) -> str:
    if grid.columns:
        names = " | ".join(escape(c.name) for c in grid.columns)
        task = f"the {escape(grid.task)} task's" if grid.task else "the task's"
        return f"rows are sample images; columns are {task} visuals: {names}"
    return f"rows are sample images; columns are the task's visuals ({escape(grid.note)})"


def samples(view: RunView) -> str:
    if not view.frames:
        return _section("Sample grids", '<p class="note">no sample grids yet (samples/)</p>', "samples")
    grid = view.columns
    frames = [{"epoch": epoch, "src": quote(path)} for epoch, path in view.frames]
    last = frames[-1]
    controls = (f'<div class="slider"><label for="epoch-slider">epoch</label>'
                f'<input id="epoch-slider" type="range" min="0" max="{len(frames) - 1}" value="{len(frames) - 1}" '
                f'step="1"><output for="epoch-slider">epoch {last["epoch"]}</output></div>'
                f'<p class="note">{_caption(grid)}</p>')
    stage = (f'<div class="stage"><div class="grid">{_headers(grid)}'
             f'<a class="frame" href="{escape(last["src"])}"><img src="{escape(last["src"])}" '
             f'alt="sample grid, epoch {last["epoch"]}"></a></div></div>')
    body = (f'<div class="samples" data-frames="{escape(json.dumps(frames))}">'
            f'<div class="controls">{controls}</div>{stage}</div>')
    return _section("Sample grids", body, "samples")


def evaluation(view: RunView) -> str:
    found = view.evaluations
    best = found.best or {}
    if found.latest is None and not best:
        return ""
    columns = [e for e in (found.latest, found.at_best) if e is not None]
    if len(columns) == 2 and columns[0].get("epoch") == columns[1].get("epoch"):
        columns = columns[:1]
    keys = list(dict.fromkeys(k for e in columns for k in e["metrics"]))
    higher = _directions(found)
    head = ["figure", "better"]
    for e in columns:
        roles = [r for r, other in (("latest", found.latest), ("best checkpoint", found.at_best))
                 if other is not None and other.get("epoch") == e.get("epoch")]
        head.append(f"epoch {escape(str(e.get('epoch')))} ({', '.join(roles)})")
    rows = []
    for key in keys:
        better = {True: "higher ↑", False: "lower ↓"}.get(higher.get(key), "")
        row: list[Any] = [escape(key), better]
        for e in columns:
            value = number(e["metrics"].get(key))
            marked = key == best.get("metric") and e.get("epoch") == best.get("epoch")
            row.append((f"{value} ★", "best") if marked else value)
        rows.append(row)
    notes = []
    latest = found.latest
    if latest is not None:
        notes.append(f"latest: split {escape(str(latest.get('split', '?')))}, {escape(str(latest.get('items', '?')))} "
                     f"items, step {escape(str(latest.get('step')))}")
    if best:
        notes.append(f"best checkpoint: {escape(str(best.get('metric')))} = {number(best.get('value'))} at epoch "
                     f"{escape(str(best.get('epoch')))} (★)")
    note = "".join(f'<p class="note">{n}</p>' for n in notes)
    return _section("Evaluation", (_table(head, rows, set(range(2, len(head)))) if rows else "") + note, "evaluation")


def last_values(view: RunView) -> str:
    rows = []
    for chart in view.charts:
        for key, points in chart.series.items():
            values = [p[1] for p in points]
            rows.append([escape(key), figure(values[-1], key), f"{points[-1][0]:g}", figure(min(values), key),
                         figure(max(values), key)])
    if not rows:
        return ""
    return _section("Last logged values", _table(["series", "last", "at epoch", "min", "max"], rows,
                                                 {1, 2, 3, 4}), "values")


def components(view: RunView) -> str:
    c = view.components
    if not c.rows:
        return _section("Components", f'<p class="note">{escape(c.note or "none recorded")}</p>', "components")
    rows = [[escape(r["kind"]), escape(r["name"]), escape(r["distribution"]), escape(r["version"])] for r in c.rows]
    note = (f'<p class="note">from checkpoints/latest.safetensors: step {c.step}, epoch {c.epoch}, '
            f"p2p {escape(str(c.p2p_version))}</p>")
    return _section("Components", _table(["kind", "name", "plugin", "version"], rows) + note, "components")


def recipe(view: RunView) -> str:
    if view.recipe.text is None:
        return _section("Recipe", '<p class="note">no recipe.toml</p>', "recipe")
    return _section("Recipe", f"<pre>{escape(view.recipe.text)}</pre>", "recipe")


def render(view: RunView) -> str:
    """The whole document."""
    title = escape(str(view.recipe.values.get("name") or view.folder))
    body = "".join(part(view) for part in (header, curves, samples, evaluation, last_values, components, recipe))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{assets.CONTENT_POLICY}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} · p2p report</title><style>{assets.STYLE}</style></head>"
            f"<body><main>{body}</main><script>{assets.SCRIPT}</script></body></html>\n")
