"""The report's style sheet, script and content policy, inlined so the page is one file that loads
nothing from the network: system fonts only, images from the run directory only."""

from __future__ import annotations

# Inline style and script only; images from the page's own folder (file: covers opening it from disk).
CONTENT_POLICY = ("default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; "
                  "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'")

STYLE = """
:root { color-scheme: light; --ink: #1c2230; --muted: #5b6577; --line: #d9dee7; --paper: #ffffff;
  --back: #f4f6f9; --accent: #1f5fae; --good: #e7f4ea; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--back); color: var(--ink); line-height: 1.5;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1240px; margin: 0 auto; padding: 24px 20px 48px; }
header h1 { font-size: 1.6rem; margin: 0 0 4px; }
header p { margin: 0; color: var(--muted); }
section { background: var(--paper); border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px;
  margin-top: 20px; }
h2 { font-size: 1.15rem; margin: 0 0 12px; }
.facts { display: flex; flex-wrap: wrap; gap: 8px 24px; margin: 14px 0 0; padding: 0; list-style: none; }
.facts li { color: var(--muted); } .facts b { color: var(--ink); font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); gap: 16px; }
figure { margin: 0; } figcaption { font-weight: 600; margin-bottom: 4px; }
svg.chart { width: 100%; height: auto; display: block; font-size: 12px; fill: var(--muted); }
svg.chart .grid line { stroke: #eceff4; } svg.chart .axis line { stroke: #9aa3b2; }
svg.chart path.series { fill: none; stroke-width: 1.6; stroke-linejoin: round; stroke-linecap: round; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: 600; } td.num, th.num { text-align: right; }
td.best { background: var(--good); font-weight: 600; }
.scroll { overflow-x: auto; }
.samples { display: grid; grid-template-columns: minmax(170px, 230px) minmax(0, 1fr); gap: 16px 24px;
  align-items: start; }
.samples .controls { position: sticky; top: 12px; }
.slider { display: flex; flex-direction: column; align-items: stretch; gap: 6px; margin-bottom: 12px; }
.slider label { font-weight: 600; }
.slider input { width: 100%; margin: 0; accent-color: var(--accent); }
.slider output { font-variant-numeric: tabular-nums; }
.stage { min-width: 0; }
.stage .grid { display: inline-block; max-width: 100%; vertical-align: top; }
.columns { display: grid; grid-template-columns: repeat(var(--columns), minmax(0, 1fr)); margin-bottom: 4px; }
.column { text-align: center; padding: 0 2px; line-height: 1.25; overflow-wrap: anywhere; }
.column b { display: block; font-size: 0.9rem; } .column span { color: var(--muted); font-size: 0.78rem; }
.frame { display: block; }
.frame img { display: block; max-width: 100%; height: auto; image-rendering: pixelated;
  border: 1px solid var(--line); background: #fff; }
@media (max-width: 700px) {
  .samples { grid-template-columns: minmax(0, 1fr); }
  .samples .controls { top: 0; z-index: 1; background: var(--paper); padding: 8px 0; }
}
figure.strip { align-self: start; } figcaption span { color: var(--muted); font-weight: 400; }
svg.chart .y-title { fill: var(--ink); }
pre { background: #f7f8fb; border: 1px solid var(--line); border-radius: 6px; padding: 12px; overflow-x: auto;
  font: 13px/1.45 ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; margin: 0; }
.note { color: var(--muted); margin: 0; }
a { color: var(--accent); }
"""

SCRIPT = """
document.querySelectorAll(".samples").forEach(function (box) {
  var frames = JSON.parse(box.dataset.frames);
  var range = box.querySelector("input"), out = box.querySelector("output");
  var img = box.querySelector("img"), link = box.querySelector(".frame");
  var stage = box.querySelector(".stage"), heads = box.querySelector(".columns");
  var controls = box.querySelector(".controls");
  function fit() {  // as wide as the card allows and short enough to stay in view beside the slider
    if (!img.naturalWidth) return;
    var above = controls.offsetTop + controls.offsetHeight <= stage.offsetTop ? controls.offsetHeight : 0;
    var room = Math.max(160, window.innerHeight - 48 - above - (heads ? heads.offsetHeight : 0));
    var width = Math.min(stage.clientWidth, img.naturalWidth * room / img.naturalHeight);
    img.style.width = Math.max(width, Math.min(img.naturalWidth, stage.clientWidth)) + "px";
  }
  function show() {
    var frame = frames[Number(range.value)];
    if (img.getAttribute("src") !== frame.src) img.src = frame.src;
    link.href = frame.src;
    img.alt = "sample grid, epoch " + frame.epoch;
    out.textContent = "epoch " + frame.epoch + " (" + (Number(range.value) + 1) + " of " + frames.length + ")";
  }
  img.addEventListener("load", fit);
  window.addEventListener("resize", fit);
  range.addEventListener("input", show);
  show();
  if (img.complete) fit();
});
"""
