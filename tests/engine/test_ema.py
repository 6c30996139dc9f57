"""The moving average of the weights (engine.training.ema): its arithmetic, its place in a
checkpoint, and the pair trainer exporting the average rather than the newest weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from engine.checkpoint import load_model, read_checkpoint
from engine.config import apply_overrides
from engine.data import write_synthetic_photos
from engine.errors import ConfigError
from engine.training.config import TrainConfig
from engine.training.ema import ModelEMA
from engine.training.pair import train_pair

TINY = ["model.channels=32", "model.blocks=2", "model.cond_channels=16", "model.support_size=4",
        "lr_patch=12", "log_every=2", "threads=1", "device=cpu"]


def test_average_follows_the_decay_exactly() -> None:
    torch.manual_seed(0)
    net = nn.Linear(3, 2)
    start = net.weight.detach().clone()
    ema = ModelEMA(net, 0.9, ramp=False)
    expected = start.clone()
    for _ in range(3):
        with torch.no_grad():
            net.weight.add_(1.0)
        ema.update(net)
        expected = 0.9 * expected + 0.1 * net.weight.detach()
    torch.testing.assert_close(ema.module.weight, expected)
    # the averaged copy is not the model: training the model leaves it alone
    assert not torch.equal(ema.module.weight, net.weight)
    assert not ema.module.weight.requires_grad


def test_ramp_follows_a_run_from_scratch_at_first() -> None:
    net = nn.Linear(2, 2)
    start = net.weight.detach().clone()
    ema = ModelEMA(net, 0.999)
    assert ema.current_decay() == pytest.approx(0.1)
    with torch.no_grad():
        net.weight.fill_(5.0)
    ema.update(net)
    # after one update the ramped average is 90% of the way to the model
    torch.testing.assert_close(ema.module.weight, 0.1 * start + 0.9 * 5.0)
    assert ema.current_decay() == pytest.approx(2 / 11)
    # without the ramp (a fine-tune) the first update barely moves it
    fine = ModelEMA(nn.Linear(2, 2), 0.999, ramp=False)
    assert fine.current_decay() == 0.999


def test_state_round_trip_and_refusals() -> None:
    net = nn.Linear(2, 2)
    ema = ModelEMA(net, 0.99)
    with torch.no_grad():
        net.weight.add_(1.0)
    ema.update(net)
    other = ModelEMA(nn.Linear(2, 2), 0.99)
    other.load_state_dict(ema.state_dict())
    torch.testing.assert_close(other.module.weight, ema.module.weight)
    assert other.updates == 1
    with pytest.raises(ConfigError, match="ema_decay"):
        ModelEMA(net, 1.0)
    with pytest.raises(ConfigError, match="no weights"):
        other.load_state_dict({"updates": 3})
    with pytest.raises(ConfigError, match="ema_decay"):
        apply_overrides(TrainConfig.preset("studio-cpu"), ["ema_decay=1.5"])


def test_pair_run_exports_the_average_and_resumes_it(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_synthetic_photos(photos, 3, (96, 120), seed=0)
    cfg = apply_overrides(TrainConfig.preset("studio-cpu"), [*TINY, "ema_decay=0.5", "lr_base=1e-3"])
    out = tmp_path / "run"
    first = train_pair(cfg, photos, out, budget_s=60.0, max_steps=3)
    assert first["last_step"] == 3
    for name, stem in (("cmdsr", "cmdsr_x4"), ("baseline", "basenet_x4")):
        _, newest, meta = read_checkpoint(out / name / "latest.pt")
        ema_state = meta["train_state"]["ema"]
        assert ema_state["updates"] == 3
        exported = load_model(out / f"{stem}_fp32.pt").state_dict()
        key = "sr_net.input_conv.weight"
        # the export is the average, which lags the newest weights
        torch.testing.assert_close(exported[key], ema_state["weights"][key])
        assert not torch.equal(exported[key], newest[key])
    second = train_pair(cfg, photos, out, budget_s=60.0, max_steps=5, resume=True)
    assert second["first_step"] == 3 and second["last_step"] == 5
    _, _, meta = read_checkpoint(out / "cmdsr" / "latest.pt")
    assert meta["train_state"]["ema"]["updates"] == 5


def test_a_resumed_fine_tune_keeps_averaging_without_a_ramp() -> None:
    """After a resume the average of a fine-tune must not start following the newest weights
    (a rebuilt average ramps by default: decay 0.8 at update 34 instead of 0.999)."""
    fine = ModelEMA(nn.Linear(2, 2), 0.999, ramp=False)
    for _ in range(34):
        fine.update(nn.Linear(2, 2))
    resumed = ModelEMA(nn.Linear(2, 2), 0.999)  # as a resumed run builds it, before loading
    resumed.load_state_dict(fine.state_dict())
    assert resumed.current_decay() == 0.999
