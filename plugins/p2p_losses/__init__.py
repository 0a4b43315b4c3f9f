"""Built-in loss terms: adversarial (`gan`), reconstruction (`l1`), pix2pixHD's `feature_matching` and
`perceptual` (VGG19), and CUT's contrastive `patch_nce`."""

from __future__ import annotations

from typing import Any, Literal

from p2pcore.api import BuildContext, Field, LossParams, hookimpl

P2P_API = ">=1,<2"  # the plugin API versions this plugin supports: p2pcore.api.API_VERSION


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


class PerceptualParams(LossParams):
    weights: str = Field(description="VGG19 ImageNet weights: a .pth state_dict (torchvision's vgg19-dcbb9e9d.pth) "
                                     "or a .safetensors file; never downloaded")
    pred: str = Field("fake_b", description="tensor to compare")
    target: str = Field("real_b", description="tensor it should look like")
    normalize: bool = Field(False, description="map [-1, 1] images to ImageNet's mean and deviation before VGG "
                                               "(the reference feeds them as they are)")

    def reads(self) -> frozenset[str]:
        return frozenset({self.pred, self.target})


class PatchNCEParams(LossParams):
    pair: str = Field("ab", pattern=r"^[A-Za-z0-9_]+$", description=(
        "which pair of the task's patch features to compare: reads the tensor nce_<pair> (per layer, the "
        "projected features of the output's patches and of the input's at the same places); the cut task "
        "gives ab (fake_b against real_a) and idt (idt_b against real_b)"))
    temperature: float = Field(0.07, gt=0, description="divides every similarity before the cross-entropy "
                                                       "(tau; CUT: 0.07)")

    def reads(self) -> frozenset[str]:
        return frozenset({f"nce_{self.pair}"})


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


def build_perceptual(params: PerceptualParams, ctx: BuildContext) -> Any:
    """VGG19 perceptual loss: features relu1_1 .. relu5_1 weighted 1/32 .. 1 (pix2pixHD, weight 10)."""
    from pathlib import Path

    from p2p_losses.perceptual import PerceptualLoss, vgg19_features

    features = vgg19_features(Path(params.weights), key=f"{ctx.key or 'loss.perceptual'}.weights")
    return PerceptualLoss(features, pred=params.pred, target=params.target, normalize=params.normalize)


def build_patch_nce(params: PatchNCEParams, ctx: BuildContext) -> Any:
    """CUT's PatchNCE: each output patch's features should match the input's at the same place rather than at
    the image's other sampled places (cross-entropy over similarities / temperature), averaged over layers."""
    from p2p_losses.patch_nce import PatchNCELoss

    return PatchNCELoss(params.pair, params.temperature)


@hookimpl
def p2p_register_losses(register: Any) -> None:
    register("gan", build_gan, params=GanParams, aliases=("adversarial",))
    register("l1", build_l1, params=L1Params)
    register("feature_matching", build_feature_matching, params=FeatureMatchingParams, aliases=("fm",),
             summary="L1 between the discriminator's intermediate features on real and generated images, "
                     "each scale and layer weighted 4/layers * 1/scales (pix2pixHD, weight 10)")
    register("perceptual", build_perceptual, params=PerceptualParams, aliases=("vgg",),
             summary="VGG19 features relu1_1 .. relu5_1 of output and target, L1 weighted 1/32 .. 1 "
                     "(pix2pixHD, weight 10); weights from a local file")
    register("patch_nce", build_patch_nce, params=PatchNCEParams,
             summary="CUT's contrastive loss: each sampled output patch against the input's patch at the same "
                     "place (positive) and its other sampled patches (negatives), per encoder layer, "
                     "temperature 0.07 (CUT: weight 1 with identity, FastCUT: 10)")
