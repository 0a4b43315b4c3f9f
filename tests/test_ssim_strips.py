"""SSIM of large images in strips of rows: the same figure as the whole image, in memory bounded by the strip."""

from __future__ import annotations

import pytest
import torch
from p2p_metrics import structural


def test_strips_give_the_whole_images_ssim(monkeypatch):
    generator = torch.Generator().manual_seed(0)
    preds = torch.rand(2, 3, 70, 53, generator=generator)
    target = (preds + 0.2 * torch.rand(2, 3, 70, 53, generator=generator)).clamp(0, 1)
    whole = structural._ssim_map(preds, target).double().flatten(1).mean(1)
    for values in (3 * 2 * 53 * 11, 3 * 2 * 53 * 25, structural.STRIP_VALUES):  # 1 row, 5 rows, one strip
        monkeypatch.setattr(structural, "STRIP_VALUES", values)
        torch.testing.assert_close(structural.ssim(preds, target).double(), whole, rtol=0, atol=1e-6)


def test_a_large_image_is_scored_in_several_strips(monkeypatch):
    calls = []
    original = structural._ssim_map
    monkeypatch.setattr(structural, "_ssim_map", lambda p, t: calls.append(p.shape[-2]) or original(p, t))
    image = torch.rand(1, 3, 1500, 2000)
    value = structural.ssim(image, image)
    assert value.item() == pytest.approx(1.0, abs=1e-4)
    assert len(calls) > 1 and max(calls) * 3 * 2000 <= structural.STRIP_VALUES
