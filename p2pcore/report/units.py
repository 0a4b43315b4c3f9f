"""What a plotted figure measures and in which unit, for the y-axis titles.

The metric contract says which way a figure is better (`MetricParams.figures`) but not its unit, so the
units of the figures p2p logs are kept here, in one table keyed by what :func:`p2pcore.records.parse_key`
takes apart; a key this table does not know (a third party's metric) is titled by its bare name.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from p2pcore.records import EVAL, LR, SAMPLES, SKIPPED, TOTAL, parse_key

PIXELS = "L1, pixels in [-1, 1]"
EVAL_TITLES = {
    "psnr": "PSNR (dB)",
    "ssim": "SSIM (unitless)",
    "ms_ssim": "MS-SSIM (unitless)",
    "l1": PIXELS,
    "lab_histogram_intersection": "intersection (0 to 1)",
    "frechet_distance": "Fréchet distance",
    "fcn_score": "fraction (0 to 1)",
    "segmentation_scores": "fraction (0 to 1)",
}
"""An `[eval]` metric's axis title by its registered name."""
OTHER_TITLES = {
    SAMPLES: PIXELS,
    LR: "learning rate",
    **dict.fromkeys(SKIPPED, "count"),
}
"""The axis title of the figures logged beside the losses, by their group."""
SIDES = ("G", "D")
"""The tags of the sides whose terms are logged (the generator's and the discriminator's losses)."""
SECONDS = ("_s", "_sec", "_seconds", "_time")
"""Name endings of durations, in seconds (a callback's `data_time`, `step_s`)."""


def axis_title(key: str, directions: Collection[str] = ()) -> str:
    """The y-axis title of one logged key: quantity and unit where known, else the key's bare name."""
    group, name, _, _ = parse_key(key, directions)
    if group == EVAL:
        return EVAL_TITLES.get(name, name or key)
    if group in OTHER_TITLES:
        return OTHER_TITLES[group]
    last = key.rsplit("/", 1)[-1]
    if last.endswith(SECONDS) or last in ("time", "seconds"):
        return f"{last} (s)"
    if group in SIDES and name:
        return "loss (weighted sum)" if name == TOTAL else "loss (unweighted)"
    return key


def common_title(keys: Iterable[str], directions: Collection[str] = ()) -> str:
    """The title of a plot of `keys`: theirs when they agree, otherwise each distinct one in turn."""
    titles = list(dict.fromkeys(axis_title(k, directions) for k in keys))
    return " / ".join(titles)
