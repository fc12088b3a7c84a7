"""Batched augmentation for 48x48 faces, run as tensor ops on whatever device holds the batch.

One affine warp per face does random-resized-crop, rotation, horizontal flip and the resize to
the model's input size at once; then brightness / contrast, random erasing, and optionally mixup
or cutmix. Everything is vectorised over the batch, so on a GPU the data never leaves it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["AugmentConfig", "augment_batch", "mix_batch"]


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (defaults tuned for 48x48 FER-2013 faces).

    Attributes:
        scale: range of the crop's area as a fraction of the face.
        ratio: range of the crop's aspect ratio.
        rotation: maximum rotation, degrees.
        flip: probability of a horizontal flip.
        brightness: maximum additive brightness shift on the [0, 1] scale.
        contrast: maximum relative contrast change.
        erase: probability of erasing one random rectangle.
        erase_area: range of the erased area as a fraction of the image.
        mixup: mixup alpha (0 = off).
        cutmix: cutmix alpha (0 = off); when both are on, each batch picks one at random.
    """

    scale: tuple[float, float] = (0.75, 1.0)
    ratio: tuple[float, float] = (0.9, 1.1)
    rotation: float = 15.0
    flip: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.3
    erase: float = 0.25
    erase_area: tuple[float, float] = (0.02, 0.15)
    mixup: float = 0.0
    cutmix: float = 0.0


def _uniform(n: int, low: float, high: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=generator, device=device) * (high - low) + low


def augment_batch(
    gray01: torch.Tensor, size: int, config: AugmentConfig, generator: torch.Generator
) -> torch.Tensor:
    """Augment a batch of grayscale faces and resize it to ``size``.

    Args:
        gray01: ``(N, 1, h, w)`` float in [0, 1].
        size: output side (the model's input size).
        config: augmentation strengths.
        generator: random generator on the batch's device (seeded by the caller).

    Returns:
        ``(N, 1, size, size)`` float in [0, 1].
    """
    n, device = gray01.shape[0], gray01.device
    area = _uniform(n, *config.scale, generator, device)
    log_ratio = _uniform(n, math.log(config.ratio[0]), math.log(config.ratio[1]), generator, device)
    ratio = torch.exp(log_ratio)
    scale_x = torch.sqrt(area * ratio).clamp(max=1.0)
    scale_y = torch.sqrt(area / ratio).clamp(max=1.0)
    # The crop centre may move as far as the crop still fits inside the face.
    shift_x = (torch.rand(n, generator=generator, device=device) * 2 - 1) * (1 - scale_x)
    shift_y = (torch.rand(n, generator=generator, device=device) * 2 - 1) * (1 - scale_y)
    angle = (torch.rand(n, generator=generator, device=device) * 2 - 1) * math.radians(config.rotation)
    flip = torch.where(torch.rand(n, generator=generator, device=device) < config.flip, -1.0, 1.0)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack(
        [
            torch.stack([cos * scale_x * flip, -sin * scale_y, shift_x], dim=1),
            torch.stack([sin * scale_x * flip, cos * scale_y, shift_y], dim=1),
        ],
        dim=1,
    ).to(gray01.dtype)
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    out = F.grid_sample(gray01, grid, mode="bilinear", padding_mode="border", align_corners=False)

    contrast = 1 + (torch.rand(n, 1, 1, 1, generator=generator, device=device) * 2 - 1) * config.contrast
    brightness = (torch.rand(n, 1, 1, 1, generator=generator, device=device) * 2 - 1) * config.brightness
    mean = out.mean(dim=(2, 3), keepdim=True)
    out = ((out - mean) * contrast + mean + brightness).clamp(0, 1)

    if config.erase > 0:
        erase_area = _uniform(n, *config.erase_area, generator, device)
        aspect = torch.exp(_uniform(n, math.log(0.5), math.log(2.0), generator, device))
        height = torch.sqrt(erase_area / aspect).clamp(max=1.0)
        width = torch.sqrt(erase_area * aspect).clamp(max=1.0)
        top = torch.rand(n, generator=generator, device=device) * (1 - height)
        left = torch.rand(n, generator=generator, device=device) * (1 - width)
        coords = (torch.arange(size, device=device, dtype=out.dtype) + 0.5) / size
        rows = (coords[None, :] >= top[:, None]) & (coords[None, :] < (top + height)[:, None])
        cols = (coords[None, :] >= left[:, None]) & (coords[None, :] < (left + width)[:, None])
        chosen = torch.rand(n, generator=generator, device=device) < config.erase
        mask = (rows[:, :, None] & cols[:, None, :] & chosen[:, None, None]).unsqueeze(1)
        noise = torch.rand(out.shape, generator=generator, device=device, dtype=out.dtype)
        out = torch.where(mask, noise, out)
    return out


def mix_batch(
    images: torch.Tensor, targets: torch.Tensor, config: AugmentConfig, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup or cutmix a batch with its reversed self; ``targets`` are ``(N, C)`` distributions."""
    use_mixup, use_cutmix = config.mixup > 0, config.cutmix > 0
    if not (use_mixup or use_cutmix):
        return images, targets
    if use_mixup and use_cutmix:
        use_mixup = bool(torch.rand(1, generator=generator, device=generator.device) < 0.5)
    alpha = config.mixup if use_mixup else config.cutmix
    # Beta(alpha, alpha) from two Gammas, drawn with the seeded generator.
    g1 = torch._standard_gamma(torch.full((1,), alpha, device=images.device), generator=generator)
    g2 = torch._standard_gamma(torch.full((1,), alpha, device=images.device), generator=generator)
    lam = float(g1 / (g1 + g2))
    flipped = images.flip(0)
    if use_mixup:
        mixed = images * lam + flipped * (1 - lam)
    else:
        h, w = images.shape[-2:]
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy = int(torch.randint(h, (1,), generator=generator, device=generator.device))
        cx = int(torch.randint(w, (1,), generator=generator, device=generator.device))
        y0, y1 = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, h)
        x0, x1 = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, w)
        mixed = images.clone()
        mixed[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1 - (y1 - y0) * (x1 - x0) / (h * w)
    return mixed, targets * lam + targets.flip(0) * (1 - lam)
