"""README's quickstart figures, drawn from a finished quickstart run (no plotting library: PIL only).

    p2p run recipes/quickstart.toml
    python docs/images/quickstart_figures.py runs/quickstart docs/images

writes `NAME_curve.png` (the held-out figures the run logs against the epoch, one panel each, from
RUN/metrics.jsonl: L1 and PSNR for pix2pix and pix2pixHD, the colour histogram intersection for CycleGAN)
and `NAME_samples.png` (the sample grid of the first and the last epoch side by side, from RUN/samples/,
enlarged 2x without smoothing), NAME being the run folder's name (`quickstart`, `quickstart_cyclegan`, ...).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT, MARGIN = 420, 260, (58, 16, 24, 44)  # panel size; left, top, right, bottom margins
INK, GRID, LINE = (40, 40, 40), (225, 225, 225), (31, 119, 180)


# the figures drawn, where the run logs them: (key, title, unit)
PANELS = (("eval/l1", "held-out L1", "lower is better, images in [-1, 1]"),
          ("eval/psnr", "held-out PSNR", "dB, higher is better"),
          ("eval/a2b/lab_histogram_intersection", "held-out colour histograms", "intersection"))


def evaluations(run: Path) -> tuple[list[dict], list[tuple[str, str, str]]]:
    """The evaluation lines of a run's metrics.jsonl, in order (a half-written last line is left out), and
    the panels they have figures for."""
    rows = []
    for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if any(key in row for key, _, _ in PANELS):
            rows.append(row)
    if not rows:
        raise SystemExit(f"{run}/metrics.jsonl has none of {', '.join(k for k, _, _ in PANELS)}: is it a "
                         "quickstart run?")
    return rows, [spec for spec in PANELS if all(spec[0] in row for row in rows)]


def panel(epochs: list[float], values: list[float], title: str, unit: str) -> Image.Image:
    """One line chart with its axes, ticks and title."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    left, top, right, bottom = MARGIN
    x0, x1, y0, y1 = left, WIDTH - right, top + 16, HEIGHT - bottom
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 1.0
    lo, hi = lo - pad, hi + pad

    def at(epoch: float, value: float) -> tuple[float, float]:
        span = max(epochs[-1] - epochs[0], 1)
        return x0 + (epoch - epochs[0]) / span * (x1 - x0), y1 - (value - lo) / (hi - lo) * (y1 - y0)

    for k in range(5):
        value = lo + (hi - lo) * k / 4
        y = at(epochs[0], value)[1]
        draw.line([(x0, y), (x1, y)], fill=GRID)
        draw.text((x0 - 6, y), f"{value:.3g}", fill=INK, font=font, anchor="rm")
    for epoch in epochs:
        x = at(epoch, lo)[0]
        draw.line([(x, y1), (x, y1 + 4)], fill=INK)
        if len(epochs) <= 10 or int(epoch) % 2 == 0:
            draw.text((x, y1 + 6), f"{epoch:g}", fill=INK, font=font, anchor="mt")
    draw.rectangle([x0, y0, x1, y1], outline=INK)
    draw.line([at(e, v) for e, v in zip(epochs, values, strict=True)], fill=LINE, width=2)
    for e, v in zip(epochs, values, strict=True):
        x, y = at(e, v)
        draw.ellipse([x - 2.5, y - 2.5, x + 2.5, y + 2.5], fill=LINE)
    draw.text((x0, top), f"{title} ({unit}): {values[0]:.3f} at epoch {epochs[0]:g}, {values[-1]:.3f} at "
                         f"{epochs[-1]:g}", fill=INK, font=font)
    draw.text(((x0 + x1) / 2, HEIGHT - 14), "epoch", fill=INK, font=font, anchor="mm")
    return image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a finished quickstart run directory")
    parser.add_argument("out", type=Path, help="folder for the two PNG files")
    args = parser.parse_args()
    rows, specs = evaluations(args.run)
    epochs = [float(r["epoch"]) for r in rows]
    args.out.mkdir(parents=True, exist_ok=True)
    name = args.run.resolve().name

    panels = [panel(epochs, [r[key] for r in rows], title, unit) for key, title, unit in specs]
    curve = Image.new("RGB", (WIDTH * len(panels), HEIGHT), "white")
    for i, p in enumerate(panels):
        curve.paste(p, (i * WIDTH, 0))
    curve.save(args.out / f"{name}_curve.png", optimize=True)

    grids = sorted((args.run / "samples").glob("epoch_*.png"))
    first, last = (Image.open(grids[i]).convert("RGB") for i in (0, -1))
    gap = 12
    both = Image.new("RGB", (first.width + last.width + gap, max(first.height, last.height)), "white")
    both.paste(first, (0, 0))
    both.paste(last, (first.width + gap, 0))
    both.resize((both.width * 2, both.height * 2), Image.NEAREST).save(args.out / f"{name}_samples.png",
                                                                       optimize=True)
    print(f"{args.out / f'{name}_curve.png'}, {args.out / f'{name}_samples.png'} "
          f"(from {grids[0].name} and {grids[-1].name})")


if __name__ == "__main__":
    main()
