"""Built-in evaluation metrics."""

from __future__ import annotations

from typing import Any

from p2p_metrics.image_metrics import register_image_metrics
from p2p_metrics.segmentation import register_segmentation_metrics
from p2pcore.api import hookimpl

P2P_API = ">=1.2,<2"  # the plugin API versions this plugin supports (the Cityscapes label set came with 1.2)


@hookimpl
def p2p_register_metrics(register: Any) -> None:
    register_image_metrics(register)
    register_segmentation_metrics(register)
