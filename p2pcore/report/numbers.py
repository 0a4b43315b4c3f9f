"""Numbers as the page shows them: a fixed count of significant digits, trailing zeros kept, so 0.8400 sits
beside 0.8397 and the columns of a table read at a glance."""

from __future__ import annotations

from typing import Any

from p2pcore.records import SKIPPED
from p2pcore.report.runlog import is_number

SIGNIFICANT = 4
"""Significant digits of every figure on the page (the log keeps six decimals)."""
MISSING = "–"
SMALL = 1e-3
"""Below this (a learning rate), figures are written in scientific notation: 2.000e-04, not 0.0002000."""


def number(value: Any, digits: int = SIGNIFICANT) -> str:
    """`value` with `digits` significant digits and its trailing zeros (``0.8400``, ``14.10``, ``2.000e-04``);
    a dash for what is not a finite number."""
    if not is_number(value):
        return MISSING
    value = float(value)
    style = "e" if 0 < abs(value) < SMALL else "g"
    text = f"{value:#.{digits - 1 if style == 'e' else digits}{style}}"
    mantissa, _, exponent = text.partition("e")
    return mantissa.rstrip(".") + (f"e{exponent}" if exponent else "")


def figure(value: Any, key: str = "") -> str:
    """A logged figure: the counters of what training skipped as whole numbers, others by :func:`number`."""
    if key in SKIPPED and is_number(value) and float(value).is_integer():
        return str(int(value))
    return number(value)
