"""The built-in image-quality metrics: values checked against independent computations (closed forms,
scikit-image, NumPy/SciPy), accumulation over batches, and the user errors they raise."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from conftest import SHARED, needs_shared
from typer.testing import CliRunner

from p2pcore.api import Comparison, P2PError
from p2pcore.cli import app

ROADSCENE = SHARED / "data" / "roadscene" / "rgb"
METRICS = ("l1", "psnr", "ssim", "ms_ssim", "lab_histogram_intersection", "frechet_distance")


def paired(output: torch.Tensor, target: torch.Tensor | None, direction: str = "a2b") -> Comparison:
    real = target if target is not None else torch.zeros_like(output)
    return Comparison(direction=direction, input=output, output=output, real=real, target=target)


def measure(metric, batches) -> dict[str, float]:
    metric.reset()
    for batch in batches:
        metric.update(batch)
    return metric.compute()


def smooth_images(n: int, size: int, seed: int) -> torch.Tensor:
    """Random low-frequency colour images in [-1, 1]: structured enough for SSIM and features to mean something."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 6, 6, generator=g) * 2 - 1
    fine = torch.rand(n, 3, size, size, generator=g) * 0.2 - 0.1
    up = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    return (up + fine).clamp(-1, 1)


def degrade(images: torch.Tensor, seed: int = 1, noise: float = 0.15) -> torch.Tensor:
    """Blurred (3 x 3 box) and noised copy."""
    g = torch.Generator().manual_seed(seed)
    blurred = torch.nn.functional.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    return (blurred + noise * torch.randn(images.shape, generator=g)).clamp(-1, 1)


def roadscene_images(count: int) -> np.ndarray:
    """The first `count` RGB road scenes, cropped to their common size, float64 in [0, 1], N x H x W x 3."""
    from PIL import Image

    files = sorted(ROADSCENE.glob("*.jpg"))[:count]
    images = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float64) / 255 for f in files]
    height, width = min(i.shape[0] for i in images), min(i.shape[1] for i in images)
    return np.stack([i[:height, :width] for i in images])


def degrade_np(images: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    blurred = gaussian_filter(images, sigma=(0, 1.5, 1.5, 0))
    return np.clip(blurred + rng.normal(0, 0.05, images.shape), 0, 1)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() * 2 - 1


# -- parameters, figures, show ----------------------------------------------------------------------

def test_every_parameter_is_described_and_shown(host):
    for name in METRICS:
        spec = host.registry.get("metric", name)
        for field_name, info in spec.params.model_fields.items():
            assert info.description, f"{name}.{field_name}"
    result = CliRunner().invoke(app, ["show", "metric", "psnr"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "floor_mse" in result.output and "per-image" in result.output


@pytest.mark.parametrize("name", ["l1", "psnr", "ssim", "lab_histogram_intersection"])
def test_compute_reports_the_figures_the_parameters_name(host, name):
    params = host.resolve("metric", name).params
    images = smooth_images(2, 32, seed=0)
    figures = measure(host.build("metric", name), [paired(images, degrade(images))])
    assert set(figures) == set(params.figures())
    assert all(isinstance(v, float) and math.isfinite(v) for v in figures.values())
    assert params.paired() is (name != "lab_histogram_intersection")


# -- l1 and psnr ----------------------------------------------------------------------------------------

def test_l1_is_the_mean_absolute_difference(host):
    output = torch.full((2, 3, 4, 4), 0.25)
    target = torch.full((2, 3, 4, 4), -0.5)
    target[1] = 0.5  # per image |diff| is 0.75 then 0.25
    assert measure(host.build("metric", "l1"), [paired(output, target)])[""] == pytest.approx(0.5, abs=1e-12)


def test_psnr_is_the_mean_of_per_image_psnr_of_known_mse(host):
    target = torch.zeros(2, 1, 8, 8)
    output = target.clone()
    output[0] += 0.2  # in [0, 1] units the differences are 0.1 and 0.01: MSE 1e-2 and 1e-4
    output[1] += 0.02
    value = measure(host.build("metric", "psnr"), [paired(output, target)])[""]
    assert value == pytest.approx((20 + 40) / 2, abs=1e-4)  # PSNR of the mean MSE would be 16.99 dB
    same = measure(host.build("metric", "psnr"), [paired(target, target)])[""]
    assert same == pytest.approx(100.0)  # floored MSE 1e-10


@needs_shared("data", "roadscene", "rgb")
def test_psnr_agrees_with_scikit_image_on_real_images(host):
    from skimage.metrics import peak_signal_noise_ratio

    clean = roadscene_images(3)
    noisy = degrade_np(clean)
    expected = np.mean([peak_signal_noise_ratio(c, n, data_range=1) for c, n in zip(clean, noisy, strict=True)])
    value = measure(host.build("metric", "psnr"), [paired(to_tensor(noisy), to_tensor(clean))])[""]
    assert value == pytest.approx(expected, abs=1e-3)


# -- ssim and ms_ssim -----------------------------------------------------------------------------------

@needs_shared("data", "roadscene", "rgb")
def test_ssim_agrees_with_scikit_image_on_real_images(host):
    from skimage.metrics import structural_similarity

    clean = roadscene_images(3)
    noisy = degrade_np(clean)
    per_image = [structural_similarity(n, c, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                       data_range=1, channel_axis=2) for c, n in zip(clean, noisy, strict=True)]
    assert 0.2 < min(per_image) < max(per_image) < 0.95  # a degradation SSIM sees, not a trivial case
    metric = host.build("metric", "ssim")
    ours = [measure(metric, [paired(to_tensor(noisy[i:i + 1]), to_tensor(clean[i:i + 1]))])[""] for i in range(3)]
    assert ours == pytest.approx(per_image, abs=1e-4)
    value = measure(metric, [paired(to_tensor(noisy[i:i + 1]), to_tensor(clean[i:i + 1])) for i in range(3)])[""]
    assert value == pytest.approx(float(np.mean(per_image)), abs=1e-4)
    assert measure(metric, [paired(to_tensor(clean), to_tensor(clean))])[""] == pytest.approx(1.0, abs=1e-4)


def test_ms_ssim_refuses_images_too_small_for_five_scales(host):
    metric = host.build("metric", "ms_ssim", key="eval.metrics.ms_ssim")
    small = smooth_images(1, 160, seed=0)
    with pytest.raises(P2PError) as caught:
        metric.update(paired(small, small))
    assert "ms_ssim" in caught.value.message and "176" in caught.value.message
    assert caught.value.key == "eval.metrics.ms_ssim"
    least = smooth_images(2, 176, seed=0)  # the minimum is exactly what torchmetrics accepts
    assert measure(metric, [paired(least, least)])[""] == pytest.approx(1.0, abs=1e-5)
    assert 0 < measure(metric, [paired(degrade(least), least)])[""] < 0.99


def test_ms_ssim_is_torchmetrics_multiscale_ssim():
    from p2p_metrics.structural import multiscale_ssim
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure

    target = (smooth_images(3, 180, seed=1) + 1) / 2
    preds = (degrade(target * 2 - 1, noise=0.3) + 1) / 2
    expected = multiscale_structural_similarity_index_measure(preds, target, sigma=1.5, data_range=1.0,
                                                              reduction="none", normalize="relu")
    torch.testing.assert_close(multiscale_ssim(preds, target), expected, rtol=1e-6, atol=1e-7)
    assert expected.min() < 0.95  # not the trivial identical case


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_updates_never_wait_for_the_device(host, vgg_weights):
    target = smooth_images(2, 176, seed=0).cuda()
    batch = paired(degrade(target.cpu()).cuda(), target)
    metrics = [host.build("metric", name) for name in METRICS[:-1]] + [frechet(host, vgg_weights).cuda()]
    for metric in metrics:
        metric.reset()
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for metric in metrics:
            metric.update(batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert all(math.isfinite(metric.compute()[""]) for metric in metrics)


# -- accumulation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["l1", "psnr", "ssim", "lab_histogram_intersection"])
def test_batches_accumulate_to_one_pass(host, name):
    target = smooth_images(5, 24, seed=2)
    output = degrade(target)
    metric = host.build("metric", name)
    whole = measure(metric, [paired(output, target)])
    parts = measure(metric, [paired(output[a:b], target[a:b]) for a, b in ((0, 2), (2, 3), (3, 5))])
    assert whole.keys() == parts.keys()
    for key in whole:
        assert parts[key] == pytest.approx(whole[key], rel=1e-9, abs=1e-9)


# -- Lab colour -----------------------------------------------------------------------------------------

def test_lab_conversion_matches_scikit_image():
    from p2p_metrics.lab import rgb_to_lab
    from skimage.color import rgb2lab

    rng = np.random.default_rng(0)
    rgb = rng.random((2, 16, 16, 3))
    rgb[0, 0, :4] = [[0, 0, 0], [1, 1, 1], [1, 0, 0], [0.01, 0.02, 0.005]]  # black, white, a saturated, a dark one
    ours = rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2) * 2 - 1).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ours, rgb2lab(rgb), atol=1e-3)
    as_float32 = rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).float() * 2 - 1).permute(0, 2, 3, 1)
    np.testing.assert_allclose(as_float32.numpy(), rgb2lab(rgb), atol=5e-3)


def histogram_intersection_np(outputs: np.ndarray, reals: np.ndarray, bins: int) -> list[float]:
    """Independent reference: scikit-image Lab and NumPy histograms over the same fixed ranges."""
    from skimage.color import rgb2lab

    lab_out, lab_real = rgb2lab(outputs), rgb2lab(reals)
    found = []
    for channel, (low, high) in enumerate(((0, 100), (-128, 127), (-128, 127))):
        p, _ = np.histogram(lab_out[..., channel], bins=bins, range=(low, high))
        q, _ = np.histogram(lab_real[..., channel], bins=bins, range=(low, high))
        found.append(float(np.minimum(p / p.sum(), q / q.sum()).sum()))
    return found


@pytest.mark.parametrize("bins", [256, 64])
def test_lab_histogram_intersection_matches_numpy(host, bins):
    reals = (smooth_images(4, 24, seed=3).permute(0, 2, 3, 1).double().numpy() + 1) / 2
    outputs = (degrade(smooth_images(3, 24, seed=4)).permute(0, 2, 3, 1).double().numpy() + 1) / 2
    metric = host.build("metric", {"name": "lab_histogram_intersection", "bins": bins})
    batch = Comparison("a2b", input=torch.zeros(1), output=to_tensor(outputs), real=to_tensor(reals))
    figures = measure(metric, [batch])
    expected = histogram_intersection_np(outputs, reals, bins)
    assert [figures["L"], figures["a"], figures["b"]] == pytest.approx(expected, abs=2e-3)
    assert figures[""] == pytest.approx(sum(expected) / 3, abs=2e-3)
    assert min(expected) > 0.05 and max(expected) < 0.98  # neither disjoint nor identical


def test_lab_histogram_of_black_against_white(host):
    black, white = torch.full((1, 3, 8, 8), -1.0), torch.ones(1, 3, 8, 8)
    metric = host.build("metric", "lab_histogram_intersection")
    figures = measure(metric, [Comparison("b2a", input=black, output=black, real=white)])
    assert figures["L"] == 0.0  # L 0 against L 100
    assert figures["a"] == pytest.approx(1.0) and figures["b"] == pytest.approx(1.0)  # both neutral grey
    assert figures[""] == pytest.approx(2 / 3)
    same = measure(metric, [Comparison("b2a", input=white, output=white, real=white)])
    assert same == pytest.approx({"": 1.0, "L": 1.0, "a": 1.0, "b": 1.0})


def test_lab_histogram_refuses_images_that_are_not_rgb(host):
    gray = torch.zeros(2, 1, 8, 8)
    with pytest.raises(P2PError) as caught:
        host.build("metric", "lab_histogram_intersection").update(Comparison("a2b", gray, gray, gray))
    assert "colour" in caught.value.hint and "a2b" in caught.value.message


# -- shared checks ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["l1", "psnr", "ssim", "ms_ssim"])
def test_paired_metrics_need_a_target_of_the_same_shape(host, name):
    metric = host.build("metric", name)
    images = torch.zeros(2, 3, 16, 16)
    with pytest.raises(P2PError, match="has none"):
        metric.update(paired(images, None, direction="photo2label"))
    with pytest.raises(P2PError, match="photo2label"):
        metric.update(paired(images, torch.zeros(2, 3, 16, 12), direction="photo2label"))


def test_unpaired_metrics_refuse_real_images_of_another_shape(host):
    metric = host.build("metric", "lab_histogram_intersection")
    with pytest.raises(P2PError, match="'b2a'"):
        metric.update(Comparison("b2a", torch.zeros(1), torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 8, 6)))


# -- frechet distance -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def vgg_weights(tmp_path_factory):
    """A random vgg16 (convolutions only, variance-preserving init) saved as torchvision names it."""
    from p2p_metrics.features import vgg16_trunk

    torch.manual_seed(0)
    trunk = vgg16_trunk()
    for module in trunk.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            torch.nn.init.zeros_(module.bias)
    path = tmp_path_factory.mktemp("weights") / "vgg16_random.pth"
    torch.save({f"features.{k}": v for k, v in trunk.state_dict().items()}, path)
    return path


def frechet(host, weights, **options):
    return host.build("metric", {"name": "frechet_distance", "network": "vgg16", "weights": str(weights),
                                 "size": 32, **options}, key="eval.metrics.fd")


def unpaired(output: torch.Tensor, real: torch.Tensor) -> Comparison:
    return Comparison("a2b", input=output, output=output, real=real)


def test_frechet_distance_of_a_set_with_itself_is_zero_and_grows_with_degradation(host, vgg_weights):
    metric = frechet(host, vgg_weights)
    real = smooth_images(12, 32, seed=5)
    same = measure(metric, [unpaired(real, real)])[""]
    mild = measure(metric, [unpaired(degrade(real, noise=0.05), real)])[""]
    strong = measure(metric, [unpaired(degrade(real, noise=0.4), real)])[""]
    assert abs(same) < 1e-6 * strong
    assert 0 < mild < strong


def test_frechet_distance_agrees_with_scipy_and_accumulates(host, vgg_weights):
    from scipy.linalg import LinAlgWarning, sqrtm

    metric = frechet(host, vgg_weights)
    real = smooth_images(12, 32, seed=6)
    output = degrade(smooth_images(10, 32, seed=7))
    whole = measure(metric, [unpaired(output, real[:10]), unpaired(output[:0], real[10:])])[""]
    parts = measure(metric, [unpaired(output[a:b], real[c:d]) for a, b, c, d in ((0, 3, 0, 7), (3, 10, 7, 12))])[""]
    with torch.no_grad():
        f1, f2 = metric.network(output).double().numpy(), metric.network(real).double().numpy()
    mu1, mu2 = f1.mean(0), f2.mean(0)
    s1, s2 = np.cov(f1, rowvar=False), np.cov(f2, rowvar=False)
    # The same features summed in another order differ by float64 rounding, up to n * eps relative over n
    # features; the square root of the rank-deficient S_1 S_2 turns a rounding of delta into up to sqrt(delta).
    rounding = s1.shape[0] * np.finfo(np.float64).eps * np.linalg.norm(s1, 2) * np.linalg.norm(s2, 2)
    assert parts == pytest.approx(whole, abs=2 * math.sqrt(rounding))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", LinAlgWarning)  # 10 and 12 images, 512 features: singular covariances
        root = sqrtm(s1 @ s2)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root.real)
    assert expected > 0
    assert whole == pytest.approx(expected, rel=1e-4)


def test_frechet_distance_is_undefined_below_two_images(host, vgg_weights):
    metric = frechet(host, vgg_weights)
    images = smooth_images(2, 32, seed=9)
    assert math.isnan(measure(metric, [unpaired(images[:1], images[:1])])[""])
    assert math.isnan(measure(metric, [])[""])
    assert math.isfinite(measure(metric, [unpaired(images, images)])[""])


def test_frechet_distance_weights_errors_name_file_and_key(host, vgg_weights, tmp_path):
    missing = tmp_path / "nowhere.pth"
    with pytest.raises(P2PError) as caught:
        frechet(host, missing)
    assert caught.value.file == str(missing) and caught.value.key == "eval.metrics.fd.weights"
    with pytest.raises(P2PError, match="does not fit inception_v3") as caught:
        frechet(host, vgg_weights, network="inception_v3", size=None)
    assert caught.value.file == str(vgg_weights) and caught.value.key == "eval.metrics.fd.weights"
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not a weights file")
    with pytest.raises(P2PError, match="cannot read") as caught:
        frechet(host, garbage)
    assert caught.value.file == str(garbage)
    with pytest.raises(P2PError) as caught:
        frechet(host, vgg_weights, network="inception_v3", size=64)
    assert caught.value.key == "eval.metrics.fd.size"


def test_frechet_distance_loads_safetensors_and_is_a_module(host, vgg_weights, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "vgg16.safetensors"
    state = torch.load(vgg_weights, weights_only=True)
    save_file({k.removeprefix("features."): v.contiguous() for k, v in state.items()}, str(path))
    a, b = frechet(host, vgg_weights), frechet(host, path)
    assert isinstance(b, torch.nn.Module) and not b.train().training  # always in inference mode
    images = smooth_images(4, 32, seed=8)
    with torch.no_grad():
        assert torch.equal(a.network(images), b.network(images))
