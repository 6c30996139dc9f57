"""Make resources/samples/sample.png: a degraded photo for users to try the app on.

A crop of a validation photo (mate-backgrounds, never used for training) degraded with the
paper's test setting: 7x7 Gaussian blur sigma 2.6, bicubic x4 down, Gaussian noise 15.

    python scripts/make_sample.py /work/data/corpus/val/mate_LadyBird.jpg X Y
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np


def main() -> None:
    src, x, y = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    hr = cv2.imread(str(src), cv2.IMREAD_COLOR)[y : y + 720, x : x + 960]
    blurred = cv2.GaussianBlur(hr.astype(np.float32), (7, 7), 2.6, borderType=cv2.BORDER_REFLECT)
    lr = cv2.resize(blurred, (240, 180), interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    lr = np.clip(np.round(lr + rng.normal(0, 15, lr.shape)), 0, 255).astype(np.uint8)
    out = Path(__file__).resolve().parent.parent / "resources" / "samples" / "sample.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), lr)
    cv2.imwrite(str(out.with_name("sample_hr_reference.png")), hr)
    print(f"wrote {out} ({lr.shape[1]}x{lr.shape[0]})")


if __name__ == "__main__":
    main()
