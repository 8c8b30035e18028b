"""Redacted working copies: black inside every privacy mask, unchanged outside, master untouched."""

from __future__ import annotations

import av
import numpy as np
import numpy.typing as npt

from tests.export.conftest import MASKS, Env
from vmsd.export.model import ExportResult
from vmsd.export.redact import chroma_mask, polygon_mask
from vmsd.export.verify import verify_bundle

Array = npt.NDArray[np.float64]


def _luma_frames(path: str) -> list[Array]:
    """Decoded frames as luma from RGB (so limited-range black reads as 0)."""
    frames = []
    with av.open(path) as container:
        for frame in container.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24").astype(np.float64)
            frames.append(0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])
    return frames


def _erode(mask: npt.NDArray[np.bool_], pixels: int) -> npt.NDArray[np.bool_]:
    """Shrink a mask by `pixels` (the encoder blurs a couple of pixels across a mask's edge)."""
    out = mask.copy()
    for _ in range(pixels):
        shrunk = out.copy()
        shrunk[1:, :] &= out[:-1, :]
        shrunk[:-1, :] &= out[1:, :]
        shrunk[:, 1:] &= out[:, :-1]
        shrunk[:, :-1] &= out[:, 1:]
        out = shrunk
    return out


def test_redacted_copy_is_black_inside_masks_and_faithful_outside(exported: tuple[Env, ExportResult]) -> None:
    _, result = exported
    manifest = result.manifest
    [copy] = manifest.redacted
    assert copy.file == "working-copy-redacted.mp4" and copy.source == "master.mp4"
    assert [[tuple(p) for p in polygon] for polygon in copy.masks] == MASKS
    assert "working copy" in copy.note
    master = _luma_frames(str(result.path / "master.mp4"))
    redacted = _luma_frames(str(result.path / copy.file))
    assert len(redacted) == len(master) == manifest.masters[0].video_frames
    height, width = master[0].shape
    inside_masks = [_erode(polygon_mask([polygon], width, height), 2) for polygon in MASKS]
    outside = _erode(~polygon_mask(MASKS, width, height), 3)
    assert all(m.sum() > 500 for m in inside_masks) and outside.sum() > 0.5 * width * height
    for index in range(0, len(master), 10):
        for inside in inside_masks:
            values = redacted[index][inside]
            assert values.mean() < 16 and np.percentile(values, 99) < 40, f"frame {index}"
        diff = redacted[index][outside] - master[index][outside]
        mse = float(np.mean(diff**2))
        psnr = 10 * np.log10(255**2 / mse) if mse else float("inf")
        assert psnr > 30 or float(np.mean(np.abs(diff))) < 6, f"frame {index}: PSNR {psnr:.1f} dB"
    # The master itself still shows the picture under the masks (testsrc2 is not black there).
    assert master[0][inside_masks[0]].mean() > 40
    # The copy keeps the master's timeline.
    with av.open(str(result.path / copy.file)) as a, av.open(str(result.path / "master.mp4")) as b:
        assert [f.time for f in a.decode(video=0)][:50] == [f.time for f in b.decode(video=0)][:50]
    assert verify_bundle(result.path).ok


def test_polygon_mask_even_odd_on_pixel_centres() -> None:
    square = polygon_mask([[(0.25, 0.25), (0.75, 0.25), (0.75, 0.75), (0.25, 0.75)]], 8, 8)
    assert square.sum() == 16 and square[2:6, 2:6].all()
    # A triangle covering the lower-left half of a 100x100 picture: about half the pixels.
    triangle = polygon_mask([[(0.0, 0.0), (1.0, 1.0), (0.0, 1.0)]], 100, 100)
    assert 4900 <= triangle.sum() <= 5100 and triangle[99, 0] and not triangle[0, 99]
    # Even-odd: a polygon that winds over itself leaves the doubly covered part out.
    bowtie_like = polygon_mask(
        [[(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 1.0)], [(0.0, 0.0), (0.5, 0.0), (0.5, 1.0), (0.0, 1.0)]], 10, 10
    )
    assert bowtie_like.all()  # separate polygons are unioned, not xor-ed
    assert polygon_mask([], 4, 4).sum() == 0


def test_chroma_mask_covers_any_masked_luma() -> None:
    luma = np.zeros((4, 6), dtype=np.bool_)
    luma[1, 3] = True
    assert chroma_mask(luma).tolist() == [[False, True, False], [False, False, False]]
    odd = np.ones((3, 3), dtype=np.bool_)
    assert chroma_mask(odd).shape == (2, 2) and chroma_mask(odd).all()
