"""Built-in loss terms: adversarial (`gan`), reconstruction (`l1`) and pix2pixHD's `feature_matching`."""

from __future__ import annotations

from typing import Any, Literal

from p2pcore.api import BuildContext, Field, LossParams, hookimpl


class GanParams(LossParams):
    mode: Literal["vanilla", "lsgan", "hinge", "wgan-gp"] = Field(
        "vanilla", description="vanilla: non-saturating cross-entropy (pix2pix); lsgan: least squares "
                               "(CycleGAN, pix2pixHD); hinge; wgan-gp: Wasserstein with gradient penalty")
    real_label: float = Field(1.0, description="target for real predictions (vanilla, lsgan); < 1 smooths")
    fake_label: float = Field(0.0, description="target for fake predictions (vanilla, lsgan)")
    gp_weight: float = Field(10.0, ge=0, description="gradient-penalty weight (wgan-gp)")
    prefix: str = Field("d", description="which discriminator's tensors to read: <prefix>_real, <prefix>_fake")

    def reads(self) -> frozenset[str]:
        names = {f"{self.prefix}_real", f"{self.prefix}_fake"}
        if self.mode == "wgan-gp":  # the penalty runs the discriminator between real and fake inputs
            names |= {f"{self.prefix}_in_real", f"{self.prefix}_in_fake", f"{self.prefix}_net"}
        return frozenset(names)


class L1Params(LossParams):
    pred: str = Field("fake_b", description="tensor to compare")
    target: str = Field("real_b", description="tensor it should equal")

    def reads(self) -> frozenset[str]:
        return frozenset({self.pred, self.target})


class FeatureMatchingParams(LossParams):
    prefix: str = Field("d", description="which discriminator's tensors to read: <prefix>_real, <prefix>_fake "
                                         "(each scale's intermediate feature maps)")

    def reads(self) -> frozenset[str]:
        return frozenset({f"{self.prefix}_real", f"{self.prefix}_fake"})


def build_gan(params: GanParams, ctx: BuildContext) -> Any:
    """Adversarial loss; the discriminator's objective is halved as in pix2pix."""
    from p2p_losses.adversarial import AdversarialLoss

    return AdversarialLoss(params)


def build_l1(params: L1Params, ctx: BuildContext) -> Any:
    """Mean absolute error between the generator output and the target (pix2pix's lambda term)."""
    from p2p_losses.reconstruction import L1Loss

    return L1Loss(params.pred, params.target)


def build_feature_matching(params: FeatureMatchingParams, ctx: BuildContext) -> Any:
    """pix2pixHD's feature matching: L1 between the discriminator's features on real and generated images."""
    from p2p_losses.feature_matching import FeatureMatchingLoss

    return FeatureMatchingLoss(params.prefix)


@hookimpl
def p2p_register_losses(register: Any) -> None:
    register("gan", build_gan, params=GanParams, aliases=("adversarial",))
    register("l1", build_l1, params=L1Params)
    register("feature_matching", build_feature_matching, params=FeatureMatchingParams, aliases=("fm",),
             summary="L1 between the discriminator's intermediate features on real and generated images, "
                     "each scale and layer weighted 4/layers * 1/scales (pix2pixHD, weight 10)")
