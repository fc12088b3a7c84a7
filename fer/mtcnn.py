"""MTCNN's three-stage cascade (P-Net -> R-Net -> O-Net), run with few, large tensor operations.

facenet-pytorch ships the trained networks and a reference ``detect_face``. That reference resizes
every pyramid level with ``F.interpolate(mode="area")`` on float tensors and every candidate crop
one at a time in a Python loop: on a 640x480 frame a third of the detection time goes to resizing,
and on a 30-face gallery most of it goes to the per-crop loop. This module runs the same networks
and the same algorithm (pyramid, per-scale and global NMS, box regression, squaring, "Min" NMS at
the end) with OpenCV pyramid levels, candidate crops cut and resized in uint8 with OpenCV, R- and
O-Net run in cache-sized chunks, and channels-last convolutions. One deliberate change: R-Net's
boxes are merged *after* refinement (``_REFINED_NMS``).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torchvision.ops import nms

from fer.types import Faces

__all__ = ["MtcnnCascade", "pyramid_scales"]

_STRIDE, _CELL = 2, 12  # P-Net's output stride and receptive field, in pixels of a pyramid level
#: IoU above which R-Net's *refined* boxes are merged. The reference merges the boxes before
#: refinement at 0.7, which sends ~7 boxes per face to O-Net (222 for a 30-face gallery, 87 ms of
#: O-Net); refined boxes of one face nearly coincide, so merging after refinement at 0.85 sends
#: ~1.5 per face, for 0.7 points of recall on FER galleries (README, Performance).
_REFINED_NMS = 0.85
#: R- and O-Net run on their crops in chunks of these sizes: one batch of all 668 R-Net crops of
#: a 30-face gallery took 66 ms and chunks of 256 took 33; O-Net on 146 crops 85 ms in one batch,
#: 44 in chunks of 48 (their activations then stay in the CPU's cache; medians of 25 interleaved runs).
_RNET_CHUNK, _ONET_CHUNK = 256, 48


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


def _chunked(net: torch.nn.Module, batch: torch.Tensor, chunk: int) -> tuple[torch.Tensor, ...]:
    """``net(batch)``, computed ``chunk`` rows at a time and concatenated."""
    if len(batch) <= chunk:
        return net(batch)
    parts = [net(batch[start : start + chunk]) for start in range(0, len(batch), chunk)]
    return tuple(torch.cat(outputs) for outputs in zip(*parts))


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

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        """RGB uint8 ``(H, W, 3)`` or ``(N, H, W, 3)`` -> ``(N, 3, H, W)`` channels-last float in MTCNN's [-1, 1] range."""
        batch = images[None] if images.ndim == 3 else images
        tensor = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device).permute(0, 3, 1, 2)
        return ((tensor.float() - 127.5) * 0.0078125).contiguous(memory_format=torch.channels_last)

    def _crops(self, image: np.ndarray, boxes: torch.Tensor, size: int) -> torch.Tensor:
        """All candidate crops of a stage: each box, clipped to the image, resized to ``size`` pixels.

        Boxes use MTCNN's inclusive pixel convention, and the clipped part of a box is stretched
        to the square input, as facenet-pytorch's reference does. Crops are cut and resized in
        uint8 with OpenCV (area interpolation when shrinking), ~10 us each, and converted to one
        float batch at the end: ``roi_align`` on the float image took 50 ms for a 30-face gallery.
        """
        height, width = image.shape[:2]
        b = boxes.trunc().cpu().numpy().astype(np.int64)
        x1 = np.clip(b[:, 0], 1, None) - 1
        y1 = np.clip(b[:, 1], 1, None) - 1
        x2 = np.clip(b[:, 2], None, width)
        y2 = np.clip(b[:, 3], None, height)
        crops = np.zeros((len(b), size, size, 3), np.uint8)
        for i in range(len(b)):
            if x2[i] - x1[i] < 1 or y2[i] - y1[i] < 1:
                continue  # a box entirely outside the image stays black, as in the reference
            region = image[y1[i] : y2[i], x1[i] : x2[i]]
            shrinking = region.shape[0] >= size and region.shape[1] >= size
            cv2.resize(region, (size, size), dst=crops[i], interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        return self._tensor(crops)

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
        candidates = self._proposals(image, min_size, thresholds[0], factor)
        if len(candidates) == 0:
            return Faces.empty()

        # Stage 2: R-Net rejects most proposals and refines the rest; refined duplicates are merged.
        offsets, probs = _chunked(self.rnet, self._crops(image, candidates[:, :4], 24), _RNET_CHUNK)
        passed = probs[:, 1] > thresholds[1]
        boxes, scores = _regress(candidates[passed, :4], offsets[passed], inclusive=True), probs[passed, 1]
        keep = nms(boxes, scores, _REFINED_NMS)
        boxes = _square(boxes[keep])
        if len(boxes) == 0:
            return Faces.empty()

        # Stage 3: O-Net scores, refines and places five landmarks.
        offsets, marks, probs = _chunked(self.onet, self._crops(image, boxes, 48), _ONET_CHUNK)
        passed = probs[:, 1] > thresholds[2]
        boxes, scores, offsets, marks = boxes[passed], probs[passed, 1], offsets[passed], marks[passed]
        side = (boxes[:, 2:4] - boxes[:, 0:2] + 1)[:, None, :]  # (K, 1, 2): width, height
        landmarks = torch.stack([marks[:, :5], marks[:, 5:]], dim=2) * side + boxes[:, None, 0:2] - 1
        boxes = _regress(boxes, offsets, inclusive=True)
        boxes_np = boxes.cpu().numpy().astype(np.float32)
        scores_np = scores.cpu().numpy().astype(np.float32)
        keep = _nms_min(boxes_np, scores_np, 0.7)
        return Faces(boxes_np[keep], scores_np[keep], landmarks.cpu().numpy()[keep])
