"""Label sets shared by datasets, segmenters and segmentation metrics, so a class index means one class."""

from __future__ import annotations

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign", "vegetation",
    "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
"""The 19 Cityscapes train-ID classes in train-ID order. Datasets, segmenters and segmentation metrics of
Cityscapes share this one label set, so a class index means the same class in each."""

CITYSCAPES_COLOURS: tuple[tuple[int, int, int], ...] = (
    (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
    (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60), (255, 0, 0),
    (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32))
"""The standard RGB colour (0-255) of each of :data:`CITYSCAPES_CLASSES` in colour-coded label maps."""

CITYSCAPES_VOID_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (81, 0, 81), (250, 170, 160), (230, 150, 140), (180, 165, 180), (150, 100, 100), (150, 120, 90),
    (111, 74, 0), (0, 0, 90), (0, 0, 110))
"""Colours of the Cityscapes classes outside the 19 (unlabelled and ego vehicle in black first, then ground,
parking, rail track, guard rail, bridge, tunnel, dynamic, caravan, trailer): label pixels to leave unscored."""
