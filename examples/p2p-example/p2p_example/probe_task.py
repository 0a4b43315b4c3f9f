"""`colorize_probe` task: colorize with deep supervision, declared without torch (the step is in probe.py).

It shows two task features: a network the task owns rather than a recipe role (`probe`, trained with the
generator, never exported) and a generator's feature tap (p2pcore.api's feature-tap contract): the probe reads
the generator's features at tap `probe_layer` and must recover the grey input at that map's scale, which keeps
the encoder's features tied to the image's luminance. Its default loss term (`probe`, L1) is the task's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from p2pcore.api import BuildContext, Field, OwnNetwork, P2PError, RecipeView, TaskSpec, check_taps

from .task import ColorizeParams


class ColorizeProbeParams(ColorizeParams):
    probe_layer: int = Field(2, ge=0, description="the generator's feature tap the probe reads (p2p show generator "
                                                  "NAME lists them); 2: se_resnet's first downsampling")
    probe_weight: float = Field(1.0, ge=0, description="weight of the task's default loss term probe (L1 of the "
                                                       "probe's grey against the input's)")

    def declare(self) -> TaskSpec:
        spec = super().declare()
        return TaskSpec(
            roles=spec.roles, players=spec.players, directions=spec.directions, visuals=spec.visuals,
            images=spec.images,
            tensors={**spec.tensors, "probe": ("generator",), "probe_target": ()},
            own={"probe": OwnNetwork("generator", summary="P: 1x1 convolution, generator features -> grey")},
        )

    def default_loss(self) -> Mapping[str, Mapping[str, Any]]:
        return {"probe": {"name": "l1", "pred": "probe", "target": "probe_target", "weight": self.probe_weight}}

    def check_recipe(self, view: RecipeView) -> None:
        taps = view.facts.get("generator", {}).get("taps")
        if not taps:
            raise P2PError(f"colorize_probe reads the generator's feature taps, and {view.model['generator'].name!r} "
                           "offers none", key="model.generator", hint='use name = "se_resnet" or a built-in one')
        check_taps([self.probe_layer], taps, key="task.probe_layer", generator=view.model["generator"].name)


def build_colorize_probe(params: ColorizeProbeParams, ctx: BuildContext) -> Any:
    """Colourisation with deep supervision: a probe of the task's own reads a generator's feature tap.

    The probe must give the grey input back from the generator's features at that tap; translation and export
    hold the generator alone."""
    from .probe import ColorizeProbeTask

    return ColorizeProbeTask(params.luma, params.probe_layer)
