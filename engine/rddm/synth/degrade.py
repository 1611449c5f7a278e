"""Optical degradations applied to the linear scene before mosaicking: blur and resolution loss."""

from __future__ import annotations

import cv2
import numpy as np


def defocus_blur(image: np.ndarray, radius: float) -> np.ndarray:
    """Blur ``(H, W, C)`` linear values with a uniform disk of ``radius`` pixels (a defocused lens)."""
    if radius <= 0:
        return image
    size = 2 * int(np.ceil(radius)) + 1
    yy, xx = np.mgrid[:size, :size] - size // 2
    # Anti-aliased disk: each tap weighted by how much of it lies inside the circle.
    kernel = np.clip(radius + 0.5 - np.hypot(yy, xx), 0.0, 1.0).astype(np.float32)
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def motion_blur(image: np.ndarray, length: float, angle_degrees: float) -> np.ndarray:
    """Blur along a straight line of ``length`` pixels at ``angle_degrees`` (camera shake)."""
    if length <= 1:
        return image
    size = int(np.ceil(length)) | 1
    kernel = np.zeros((size, size), dtype=np.float32)
    centre = size // 2
    direction = np.deg2rad(angle_degrees)
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, num=4 * size):
        x = int(round(centre + t * np.cos(direction)))
        y = int(round(centre - t * np.sin(direction)))
        kernel[y, x] = 1.0
    kernel /= kernel.sum()
    return cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT)


def resolution_loss(image: np.ndarray, factor: float) -> np.ndarray:
    """Down-sample by ``factor`` (area) and back up (bicubic): same size, less detail."""
    if factor <= 1.0:
        return image
    height, width = image.shape[:2]
    small = cv2.resize(
        image,
        (max(1, round(width / factor)), max(1, round(height / factor))),
        interpolation=cv2.INTER_AREA,
    )
    restored = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(restored, 0.0, 1.0).astype(image.dtype)
