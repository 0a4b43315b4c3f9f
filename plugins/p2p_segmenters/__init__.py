"""Built-in semantic segmenters, for the FCN-score.

This entry module imports no torch; the builder imports the network's module when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from p2pcore.api import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, BuildContext, Field, Params, hookimpl

P2P_API = ">=1.2,<2"  # the plugin API versions this plugin supports (the Cityscapes label set came with 1.2)

Side = Annotated[int, Field(ge=8, le=4096)]


class EspnetParams(Params):
    weights: str = Field(description=(
        "the ESPNet Cityscapes weights (p = 2, q = 8): a local .pth state_dict, read with weights_only; never "
        "downloaded. A missing file, or one whose tensors do not match the network's names and shapes, is an "
        "error"))
    size: tuple[Side, Side] = Field((256, 512), description=(
        "[height, width] images are resized to (bilinear) before segmentation, the class scores being resized "
        "back to the input's size: [256, 512] restores the 2:1 frame of Cityscapes photos squeezed to 256x256 "
        "(the pix2pix files), on which the weights score 0.41 pixel accuracy unresized and 0.63 at 256x512"))
    resize: bool = Field(True, description="false: segment images at their own size, ignoring `size`")


def build_espnet(params: EspnetParams, ctx: BuildContext) -> Any:
    """ESPNet (p = 2, q = 8) trained on Cityscapes: the 19 train-ID classes (its 20th, "other", is dropped)."""
    from p2p_segmenters.espnet import ESPNetSegmenter, load_espnet

    net = load_espnet(Path(params.weights), key=f"{ctx.key or 'segmenter.espnet'}.weights")
    return ESPNetSegmenter(net, CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, size=params.size if params.resize else None)


@hookimpl
def p2p_register_segmenters(register: Any) -> None:
    register("espnet", build_espnet, params=EspnetParams)
