"""What a written figure holds, read back from the files: a PNG with data drawn on it (not a blank or an empty frame)
and the artist ids (matplotlib gids) an SVG carries."""
from __future__ import annotations

import re
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np


def assert_png_drawn(path, min_side: int = 200) -> np.ndarray:
    """``path`` is a PNG of at least ``min_side`` pixels a side with something drawn on it: pixel values vary,
    a share of it is ink (not white) without its being all ink, and part of the ink is colour (data: bars, lines,
    markers), not only the black and grey of axes and text. Returns the RGB pixels."""
    img = mpimg.imread(Path(path))
    assert img.ndim == 3 and min(img.shape[:2]) >= min_side, img.shape
    rgb = img[..., :3].astype(float)
    if img.dtype == np.uint8:
        rgb /= 255.0
    assert float(rgb.std()) > 0.05, f"{path}: nearly uniform pixels (std {rgb.std():.3f})"
    ink = float((rgb < 0.9).any(-1).mean())
    assert 0.01 < ink < 0.9, f"{path}: {ink:.1%} of the pixels drawn"
    colour = float(((rgb.max(-1) - rgb.min(-1)) > 0.2).mean())
    assert colour > 0.002, f"{path}: {colour:.2%} of the pixels in colour (no data drawn?)"
    return rgb


def svg_gids(path) -> set[str]:
    """The ids of the artists an SVG file carries (matplotlib writes an artist's gid as its element's id)."""
    return set(re.findall(r'\bid="([^"]+)"', Path(path).read_text()))
