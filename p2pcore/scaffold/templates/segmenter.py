"""`p2p new plugin --kind segmenter`: a small fully-convolutional segmenter of the Cityscapes classes."""

from __future__ import annotations

from p2pcore.scaffold.template import Template

TEMPLATE = Template(
    summary="a small fully-convolutional segmenter of the 19 Cityscapes classes, its weights from a local file",
    entry='''
from p2pcore.api import CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, BuildContext, Field, Params, hookimpl


class $NameParams(Params):
    weights: str | None = Field(None, description=(
        "a local .pth or .safetensors state_dict of this network (a segmenter never downloads); none: "
        "untrained, for smoke runs and tests only, whose scores mean nothing"))
    width: int = Field(16, ge=1, le=512, description="filters of the hidden layers")


def build(params: $NameParams, ctx: BuildContext) -> Any:
    """A small fully-convolutional segmenter of the 19 Cityscapes classes, its weights from a local file."""
    from $name.network import SmallFcn, load

    net = SmallFcn(CITYSCAPES_CLASSES, CITYSCAPES_COLOURS, width=params.width)
    if params.weights is not None:
        load(net, params.weights, key=f"{ctx.key or 'segmenter'}.weights")
    return net.eval()


@hookimpl
def p2p_register_segmenters(register: Any) -> None:
    register("$name", build, params=$NameParams)
''',
    module='''
import torch
import torch.nn.functional as F
from torch import nn

from p2pcore.api import load_weights, read_weights

HINT = "name a state_dict saved from this network: torch.save(net.state_dict(), path)"


class SmallFcn(nn.Module):
    """RGB photos in [-1, 1] -> class scores at the photo's size: convolutions at half resolution, then a
    1x1 classifier, upsampled."""

    ignore_index = -1  # every class is scored

    def __init__(self, classes: tuple[str, ...], palette: tuple[tuple[int, int, int], ...], *, width: int) -> None:
        super().__init__()
        self.classes = tuple(classes)
        self.palette = tuple(palette)
        self.net = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1), nn.ReLU(True),
            nn.Conv2d(2 * width, 2 * width, 3, padding=1), nn.ReLU(True),
            nn.Conv2d(2 * width, len(self.classes), 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scores = self.net(images)
        return F.interpolate(scores, size=tuple(images.shape[-2:]), mode="bilinear", align_corners=False)


def load(net: SmallFcn, path: str, *, key: str) -> None:
    """Fill `net` from the file at `path`; a missing file or one that does not fit is an error naming it."""
    state = read_weights(path, what="segmenter", key=key, hint=HINT)
    load_weights(net, state, what="the segmenter", file=str(path), key=key, hint=HINT)
''',
    checks='''
@pytest.mark.parametrize("params", [{}, {"width": 8}])
def test_segmenter_contract(p2p_host, params):
    check_segmenter(p2p_host, "$name", **params)


def test_segmenter_loads_its_weights_file(p2p_host, tmp_path):
    import torch

    first = check_segmenter(p2p_host, "$name", width=8)
    torch.save(first.state_dict(), tmp_path / "weights.pth")
    again = check_segmenter(p2p_host, "$name", width=8, weights=str(tmp_path / "weights.pth"))
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), again.state_dict().values(), strict=True))
''',
    recipe={"eval": {"metrics": [{"name": "fcn_score", "segmenter": "$name"}]}},
)
