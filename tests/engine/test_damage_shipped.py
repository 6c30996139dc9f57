"""The shipped model's readout and knobs after they learnt JPEG (issue 29, item 2): both
shipped files (fp16 for users, fp32 for training) carry the same damage head and condition
map, the head reads the JPEG quality and the map takes it, over the range the knobs offer."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_model
from engine.condition_map import condition_map_of
from engine.damage_head import damage_head_of

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
FILES = (MODELS / "cmdsr_x4.pt", MODELS / "cmdsr_x4_fp32.pt")

pytestmark = pytest.mark.skipif(not all(f.exists() for f in FILES), reason="no shipped models")


def test_both_shipped_files_carry_the_same_readout_and_knobs() -> None:
    fp16, fp32 = (torch.load(f, weights_only=True) for f in FILES)
    for key in ("damage_head", "condition_map"):
        a, b = fp16[key], fp32[key]
        assert a["version"] == b["version"] == 2
        assert a["params"].keys() == b["params"].keys()
        assert all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])


def test_the_shipped_readout_reads_jpeg_and_its_knobs_take_it() -> None:
    model = load_model(FILES[0])
    head, cmap = damage_head_of(model), condition_map_of(model)
    assert head is not None and head.reads_jpeg
    assert cmap is not None and cmap.has_jpeg
    assert cmap.jpeg_range == pytest.approx((30.0, 100.0))
    assert cmap.blur_range == pytest.approx((0.4, 4.0)) and cmap.noise_range == pytest.approx((0.0, 50.0))
    heavy, none = cmap.condition(1.0, 2.0, 35.0), cmap.condition(1.0, 2.0)
    assert float((heavy - none).norm()) > 0.1 * float(none.norm())  # the JPEG knob moves it
