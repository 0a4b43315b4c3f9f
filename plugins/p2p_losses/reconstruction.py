"""Pixel reconstruction losses."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from p2pcore.api import LossTerm, Tensors


class L1Loss(LossTerm):
    def __init__(self, pred: str, target: str) -> None:
        self.pred = pred
        self.target = target

    def generator_loss(self, t: Tensors) -> torch.Tensor:
        return F.l1_loss(t[self.pred], t[self.target])
