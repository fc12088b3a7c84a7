"""MTCNN's three-stage cascade (P-Net -> R-Net -> O-Net), run with few, large tensor operations.

facenet-pytorch ships the trained networks and a reference ``detect_face``. That reference resizes
every pyramid level with ``F.interpolate(mode="area")`` on float tensors and every candidate crop
one at a time in a Python loop: on a 640x480 frame a third of the detection time goes to resizing,
and on a 30-face gallery most of it goes to the per-crop loop. This module runs the same networks
and the same algorithm (pyramid, per-scale and global NMS, box regression, squaring, "Min" NMS at
the end) with OpenCV pyramid levels, one ``roi_align`` per octave and stage, and channels-last
convolutions. One deliberate change: R-Net's boxes are merged *after* refinement (``_REFINED_NMS``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops import nms, roi_align

from fer.types import Faces

__all__ = ["MtcnnCascade", "pyramid_scales"]

_STRIDE, _CELL = 2, 12  # P-Net's output stride and receptive field, in pixels of a pyramid level
#: IoU above which R-Net's *refined* boxes are merged. The reference merges the boxes before
#: refinement at 0.7, which sends ~7 boxes per face to O-Net (222 for a 30-face gallery, 87 ms of
#: O-Net); refined boxes of one face nearly coincide, so merging after refinement at 0.85 sends
#: ~1.5 per face, for 0.7 points of recall on FER galleries (README, Performance).
_REFINED_NMS = 0.85


def pyramid_scales(height: int, width: int, min_size: float, factor: float) -> list[float]:
    """Scales at which P-Net's 12-pixel window sees faces from ``min_size`` up to the whole frame."""
    scale = 12.0 / min_size
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Grow each ``x1, y1, x2, y2`` box to a square about its centre (the next stage's input is square)."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = torch.maximum(w, h)
    x1 = boxes[:, 0] + (w - side) / 2
    y1 = boxes[:, 1] + (h - side) / 2
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def _regress(boxes: torch.Tensor, offsets: torch.Tensor, inclusive: bool) -> torch.Tensor:
    """Apply the networks' box corrections (fractions of the box side)."""
    extra = 1.0 if inclusive else 0.0
    w = boxes[:, 2] - boxes[:, 0] + extra
    h = boxes[:, 3] - boxes[:, 1] + extra
    return boxes + offsets * torch.stack([w, h, w, h], dim=1)


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """Greedy NMS on intersection over the *smaller* box, so a box nested in a face is dropped."""
    x1, y1, x2, y2 = boxes.T
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)[::-1]
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        iw = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = iw * ih / np.minimum(area[best], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


class _Octaves:
    """The image and its 2x, 4x, 8x... area-downscaled copies as network inputs, made when first asked for."""

    def __init__(self, image: np.ndarray, to_tensor) -> None:
        self._images = [image]
        self._tensors: dict[int, torch.Tensor] = {}
        self._to_tensor = to_tensor

    def count(self, largest_side: float, size: int) -> int:
        """How many octaves exist such that ``largest_side`` shrinks below ``2 * size`` (at least 1)."""
        while largest_side / 2 ** len(self._images) >= size and min(self._images[-1].shape[:2]) >= 4 * _CELL:
            last = self._images[-1]
            self._images.append(cv2.resize(last, (last.shape[1] // 2, last.shape[0] // 2), interpolation=cv2.INTER_AREA))
        return len(self._images)

    def __getitem__(self, k: int) -> torch.Tensor:
        if k not in self._tensors:
            self._tensors[k] = self._to_tensor(self._images[k])
        return self._tensors[k]


class MtcnnCascade:
    """Runs MTCNN's P-, R- and O-Net (any modules with facenet-pytorch's outputs) on one image.

    Example:
        >>> from facenet_pytorch import MTCNN  # doctest: +SKIP
        >>> nets = MTCNN()  # doctest: +SKIP
        >>> cascade = MtcnnCascade(nets.pnet, nets.rnet, nets.onet)  # doctest: +SKIP
        >>> cascade(skimage.data.astronaut(), 20, (0.6, 0.7, 0.7), 0.709).boxes.shape  # doctest: +SKIP
        (1, 4)
    """

    def __init__(self, pnet: torch.nn.Module, rnet: torch.nn.Module, onet: torch.nn.Module,
                 device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        # Channels-last: P-Net's convolutions and max-pools on large pyramid levels run markedly
        # faster in this layout on the CPU; the weights are shared, not copied.
        self.pnet = pnet.eval().to(self.device, memory_format=torch.channels_last)
        self.rnet = rnet.eval().to(self.device, memory_format=torch.channels_last)
        self.onet = onet.eval().to(self.device, memory_format=torch.channels_last)

    def _tensor(self, image: np.ndarray) -> torch.Tensor:
        """RGB uint8 ``(H, W, 3)`` -> ``(1, 3, H, W)`` channels-last float in MTCNN's [-1, 1] range."""
        tensor = torch.from_numpy(np.ascontiguousarray(image)).to(self.device).permute(2, 0, 1).unsqueeze(0)
        return ((tensor.float() - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)

    def _crops(self, octaves: _Octaves, height: int, width: int, boxes: torch.Tensor, size: int) -> torch.Tensor:
        """All candidate crops of a stage: each box, clipped to the frame, resized to ``size`` pixels.

        Boxes use MTCNN's inclusive pixel convention. Each box is cut from the octave of the image
        (full, 1/2, 1/4...) where it is between ``size`` and ``2 * size`` wide, so ``roi_align``
        with 2x2 samples per output pixel behaves like an area resize, at a fixed cost per crop
        whatever the face size (adaptive sampling costs ~3 ms per 460-pixel box).
        """
        b = boxes.trunc()
        x1 = b[:, 0].clamp(min=1) - 1
        y1 = b[:, 1].clamp(min=1) - 1
        x2 = b[:, 2].clamp(max=width)
        y2 = b[:, 3].clamp(max=height)
        rois = torch.stack([torch.zeros_like(x1), x1, y1, x2, y2], dim=1)
        side = torch.maximum(x2 - x1, y2 - y1).clamp(min=1)
        count = octaves.count(float(side.max()), size)
        octave = torch.log2(side / size).floor().clamp(0, count - 1).long()
        crops = torch.empty((len(boxes), 3, size, size), device=self.device)
        for k in octave.unique().tolist():
            chosen = octave == k
            crops[chosen] = roi_align(octaves[k], rois[chosen], output_size=size, spatial_scale=0.5 ** k,
                                      sampling_ratio=2, aligned=True)
        return crops.contiguous(memory_format=torch.channels_last)

    def _proposals(self, image: np.ndarray, min_size: float, threshold: float, factor: float) -> torch.Tensor:
        """Stage 1: P-Net over the image pyramid; square candidate boxes ``(K, 5)`` with scores."""
        height, width = image.shape[:2]
        found = []
        level = image
        for scale in pyramid_scales(height, width, min_size, factor):
            # Each level is area-resized from the previous one: 5x cheaper than from the frame each time.
            level = cv2.resize(level, (int(width * scale + 1), int(height * scale + 1)), interpolation=cv2.INTER_AREA)
            offsets, probs = self.pnet(self._tensor(level))
            score = probs[0, 1]
            rows, cols = torch.nonzero(score >= threshold, as_tuple=True)
            if len(rows) == 0:
                continue
            corner = torch.stack([cols, rows], dim=1).float() * _STRIDE
            boxes = torch.cat([((corner + 1) / scale).floor(), ((corner + _CELL) / scale).floor()], dim=1)
            candidates = torch.cat([boxes, score[rows, cols, None], offsets[0][:, rows, cols].T], dim=1)
            found.append(candidates[nms(boxes, candidates[:, 4], 0.5)])
        if not found:
            return torch.zeros((0, 5), device=self.device)
        candidates = torch.cat(found)
        candidates = candidates[nms(candidates[:, :4], candidates[:, 4], 0.7)]
        boxes = _square(_regress(candidates[:, :4], candidates[:, 5:9], inclusive=False))
        return torch.cat([boxes, candidates[:, 4:5]], dim=1)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, min_size: float, thresholds: tuple[float, float, float],
                 factor: float) -> Faces:
        """Detect faces in an RGB uint8 ``(H, W, 3)`` image.

        Args:
            min_size: smallest face side to look for, in pixels (>= 12).
            thresholds: face-probability thresholds of P-Net, R-Net and O-Net.
            factor: scale step between pyramid levels (< 1).

        Returns:
            Faces (boxes, O-Net scores, landmarks) in pixels of ``image``, without probabilities.
        """
        if not image.flags.writeable:  # torch.from_numpy warns on read-only arrays (decoded uploads are)
            image = image.copy()
        candidates = self._proposals(image, min_size, thresholds[0], factor)
        if len(candidates) == 0:
            return Faces.empty()
        height, width = image.shape[:2]
        octaves = _Octaves(image, self._tensor)

        # Stage 2: R-Net rejects most proposals and refines the rest; refined duplicates are merged.
        offsets, probs = self.rnet(self._crops(octaves, height, width, candidates[:, :4], 24))
        passed = probs[:, 1] > thresholds[1]
        boxes, scores = _regress(candidates[passed, :4], offsets[passed], inclusive=True), probs[passed, 1]
        keep = nms(boxes, scores, _REFINED_NMS)
        boxes = _square(boxes[keep])
        if len(boxes) == 0:
            return Faces.empty()

        # Stage 3: O-Net scores, refines and places five landmarks.
        offsets, marks, probs = self.onet(self._crops(octaves, height, width, boxes, 48))
        passed = probs[:, 1] > thresholds[2]
        boxes, scores, offsets, marks = boxes[passed], probs[passed, 1], offsets[passed], marks[passed]
        side = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]  # (K, 1, 2): width, height
        landmarks = torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * side + boxes[:, None, 0:2] - 1
        boxes = _regress(boxes, offsets, inclusive=True)
        boxes_np = boxes.cpu().numpy().astype(np.float32)
        scores_np = scores.cpu().numpy().astype(np.float32)
        keep = _nms_min(boxes_np, scores_np, 0.7)
        return Faces(boxes_np[keep], scores_np[keep], landmarks.cpu().numpy()[keep])
