"""The image history of CycleGAN (Shrivastava et al. 2017): a discriminator also learns from
generated images of earlier steps, which damps oscillation between the two players."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class ImagePool:
    """Up to `size` generated images. Until full, every image is stored and returned; then each
    image is, with probability 0.5, swapped for a random stored one (which is returned instead).

    Random draws come from torch's global generator, which checkpoints save, so a resumed run
    draws what the uninterrupted one would have."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand(())) < 0.5:
                index = int(torch.randint(len(self.images), ()))
                out.append(self.images[index].clone())
                self.images[index] = image.clone()
            else:
                out.append(image)
        return torch.cat(out, dim=0)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {str(i): image for i, image in enumerate(self.images)}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        self.images = [state[str(i)] for i in range(len(state))]
