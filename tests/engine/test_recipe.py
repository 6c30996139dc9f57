"""The 'studio' training recipe: per-layer step sizes, the bicubic start, warm-up and cosine
decay (by steps or a time budget), paired tasks for a damage-sensitive condition, and
texture-weighted patch positions."""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np
import pytest
import torch

from engine.checkpoint import read_checkpoint
from engine.data import TexturePick, pick_textured, write_synthetic_photos
from engine.degrade import DegradationConfig
from engine.errors import ConfigError
from engine.model import EqualConv2d, ModelConfig, build_model
from engine.training.batches import TaskBatches, open_training_source, paired_assignment
from engine.training.config import TrainConfig, TrainProgress
from engine.training.loop import train
from engine.training.losses import paired_contrastive_loss
from engine.training.model_init import bicubic_init
from engine.training.optimisers import LrProgress, build_optimisers, param_groups
from engine.training.run_folder import read_metrics

TINY = ModelConfig(scale=4, channels=32, blocks=1, support_size=3, cond_channels=8)


def studio_tiny(**kw) -> TrainConfig:
    base = dict(
        model=TINY, steps=10, tasks_per_batch=4, lr_patch=8, lr_base=1e-3, lr_cond=1e-3,
        init="bicubic", lr_per_layer=True, lr_schedule="cosine", warmup_steps=3, cond_every=1,
        task_pairing=True, texture_candidates=3, degradation=DegradationConfig.preset("studio"),
        checkpoint_every=4, log_every=2, val_every=100, num_workers=0,
        cache_crops_per_image=4, cache_crop_size=48,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root, 4, (96, 112), seed=5)
    return root


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_init_reproduces_opencv_bicubic_inside_the_image(scale):
    torch.manual_seed(0)
    model = build_model(ModelConfig(scale=scale, channels=32, blocks=2, conditioning=False))
    bicubic_init(model)
    lr = np.random.default_rng(scale).uniform(0, 255, (14, 17, 3)).astype(np.float32)
    with torch.no_grad():
        out = model(torch.from_numpy(lr.transpose(2, 0, 1))[None])[0].numpy().transpose(1, 2, 0)
    ref = cv2.resize(lr, (17 * scale, 14 * scale), interpolation=cv2.INTER_CUBIC)
    b = 3 * scale  # the network zero-pads where OpenCV replicates the border
    assert np.abs(out - ref)[b:-b, b:-b].max() < 1e-2


def test_bicubic_init_needs_room_for_the_neighbourhood():
    with pytest.raises(ConfigError, match="27 channels"):
        bicubic_init(build_model(ModelConfig(channels=16, blocks=1, conditioning=False)))


def test_per_layer_steps_undo_the_equalisation():
    model = build_model(ModelConfig(channels=64, blocks=1, support_size=3))
    groups = param_groups(model.sr_net, 1e-4, per_layer=True)
    conv = model.sr_net.backbone[0].conv1
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    assert lr_of[id(conv.weight)] == pytest.approx(1e-4 * 24)  # sqrt(64 * 9)
    assert lr_of[id(conv.bias)] == pytest.approx(1e-4)
    mod = model.sr_net.modulations.modulations[0]
    assert lr_of[id(mod.weight)] == pytest.approx(1e-4 * math.sqrt(128))  # fan_in: the condition
    assert len(lr_of) == len(list(model.sr_net.parameters()))  # every parameter once
    # one Adam step moves the effective weight of a 64-channel conv by ~lr, like a plain conv
    opt = torch.optim.Adam(groups)
    before = conv.effective_weight().detach().clone()
    x = torch.rand(1, 64, 6, 6)
    conv(x).square().mean().backward()
    opt.step()
    moved = (conv.effective_weight().detach() - before).abs()
    assert moved.median() == pytest.approx(1e-4, rel=0.05)
    assert param_groups(model.sr_net, 1e-4, per_layer=False)[0]["lr"] == 1e-4


def test_warmup_and_cosine_schedule_by_steps_and_by_time():
    cfg = studio_tiny(steps=100, warmup_steps=10, lr_floor=0.1)
    prog = LrProgress(cfg)
    f = [prog.factor(n, cfg.milestones, cfg.gamma_base) for n in range(100)]
    assert f[0] == pytest.approx(0.1 * (0.1 + 0.9 * 0.5 * (1 + 1)))  # first warm-up step
    assert f[9] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.09)))
    assert all(a >= b for a, b in zip(f[9:-1], f[10:], strict=True))  # decays after warm-up
    assert f[99] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.99)))
    timed = LrProgress(studio_tiny(steps=100, time_budget_s=50.0, warmup_steps=0))
    timed.elapsed_s = 25.0
    assert timed.fraction(10) == pytest.approx(0.5)  # time is further along than steps
    timed.elapsed_s = 80.0
    assert timed.factor(10, (), 1.0) == pytest.approx(timed.cfg.lr_floor)
    # the optimiser follows the schedule, per group
    model = build_model(TINY)
    opt = build_optimisers(model, studio_tiny(steps=100, warmup_steps=10))
    rates = [g["lr"] for g in opt.base.param_groups]
    assert rates[0] == pytest.approx(1e-3 * 0.1 * (0.02 + 0.98 * 0.5 * 2))
    assert len(set(rates)) > 1


def test_paired_tasks_share_photos_and_degradations_by_design(photos, tmp_path):
    cfg = studio_tiny()
    src = open_training_source(photos, cfg.hr_patch, tmp_path / "c", 4, 48, 0)
    ds = TaskBatches(src, cfg.degradation, 4, cfg.lr_patch, 3, 8, seed=1, length=5, paired=True)
    for step in range(5):
        batch = ds[step]
        sig, noise = batch["sigma"], batch["noise"]
        for g in range(2):
            t = 4 * g
            (a, b), (d, e) = paired_assignment(cfg.degradation, src.num_images, 1, step, g)
            assert a != b
            assert sig[t] == sig[t + 1] == d.sigma_x and sig[t + 2] == sig[t + 3] == e.sigma_x
            assert noise[t] == noise[t + 1] and noise[t + 2] == noise[t + 3]
            far = abs(math.log(d.sigma_x / e.sigma_x)) > math.log(1.3) or abs(d.noise_std - e.noise_std) >= 8
            assert far
    with pytest.raises(ValueError, match="groups of 4"):
        TaskBatches(src, cfg.degradation, 4, 8, 3, 6, seed=1, length=1, paired=True)
    with pytest.raises(ConfigError, match="multiple of 4"):
        studio_tiny(tasks_per_batch=6)


def test_paired_contrastive_loss_pulls_same_damage_and_pushes_same_photo():
    # condition = damage only: the loss is low; condition = photo only: high
    damage = torch.tensor([[0.0, 0], [0, 0], [3, 0], [3, 0]])
    photo = torch.tensor([[0.0, 0], [3, 0], [0, 0], [3, 0]])
    low, d_pos, d_neg = paired_contrastive_loss(damage, damage)
    high, p_pos, p_neg = paired_contrastive_loss(photo, photo)
    assert float(low) < 0.75 < float(high)
    # distances in standardised units: two clusters at spread 1 lie 2 apart
    assert float(d_pos) == 0 and float(d_neg) == pytest.approx(2.0)
    assert float(p_pos) == pytest.approx(2.0) and float(p_neg) == pytest.approx(1.0)
    # shrinking every condition gains nothing: no collapse towards a constant condition
    tiny, _, _ = paired_contrastive_loss(photo * 1e-3, photo * 1e-3)
    assert float(tiny) == pytest.approx(float(high), rel=5e-3)


def test_texture_picking_prefers_detail_but_keeps_flat_areas():
    rng = np.random.default_rng(0)
    flat = np.full((32, 32, 3), 128, np.uint8)
    busy = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    pick = TexturePick(candidates=2, floor=0.2)
    chosen = [pick_textured([flat, busy], pick, rng) is busy for _ in range(400)]
    share = np.mean(chosen)
    assert 0.75 < share < 0.99  # mostly detail, but the flat patch still appears
    assert pick_textured([flat], TexturePick(), rng) is flat


def test_uniform_sampling_keeps_the_data_stream_of_earlier_runs(photos, tmp_path):
    src_a = open_training_source(photos, 32, tmp_path / "a", 4, 48, 0)
    src_b = open_training_source(photos, 32, tmp_path / "b", 4, 48, 0, pick=TexturePick(1, 0.5))
    assert src_a.cache_path.name == src_b.cache_path.name
    ra, rb = np.random.default_rng(3), np.random.default_rng(3)
    for pa, pb in zip(src_a.patches(1, 32, 5, ra), src_b.patches(1, 32, 5, rb), strict=True):
        assert np.array_equal(pa, pb)
    textured = open_training_source(photos, 32, tmp_path / "c", 4, 48, 0, pick=TexturePick(4, 0.2))
    assert textured.cache_path.name != src_a.cache_path.name


def test_studio_run_resumes_exactly(photos, tmp_path):
    cfg = studio_tiny(steps=8)
    full: list[TrainProgress] = []
    train(cfg, tmp_path / "a", photos, progress=full.append)
    cancel = threading.Event()
    part: list[TrainProgress] = []

    def stop_at_5(p):
        part.append(p)
        if p.step == 5:
            cancel.set()

    train(cfg, tmp_path / "b", photos, progress=stop_at_5, cancel=cancel)
    rest: list[TrainProgress] = []
    train(cfg, tmp_path / "b", resume=True, progress=rest.append)
    assert [p.l1 for p in part + rest] == [p.l1 for p in full]
    assert [p.lr for p in part + rest] == [p.lr for p in full]
    _, sa, _ = read_checkpoint(tmp_path / "a" / "latest.pt")
    _, sb, _ = read_checkpoint(tmp_path / "b" / "latest.pt")
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_time_budget_ends_the_run_with_a_decayed_rate(photos, tmp_path, caplog):
    cfg = studio_tiny(steps=10_000, time_budget_s=0.5, warmup_steps=0, val_every=10_000)
    caplog.set_level("INFO")
    seen: list[TrainProgress] = []
    last = train(cfg, tmp_path / "t", photos, progress=seen.append)
    assert 1 <= seen[-1].step < 10_000
    assert seen[-1].lr < 0.3 * cfg.lr_base  # the cosine decay ran its course within the budget
    assert "time budget" in caplog.text
    _, _, meta = read_checkpoint(last)
    assert meta["train_state"]["optimisers"]["elapsed_s"] >= 0.5
    records = read_metrics(tmp_path / "t" / "metrics.jsonl")
    assert records[-1]["step"] == seen[-1].step
    # resuming a finished budget does nothing more
    again: list[TrainProgress] = []
    train(cfg, tmp_path / "t", resume=True, progress=again.append)
    assert again == []


def test_equalised_layers_are_found_in_the_model():
    convs = [m for m in build_model(TINY).modules() if isinstance(m, EqualConv2d)]
    assert len(convs) == 1 + 2 + 2 + 1  # input, 1 block x 2, 2 upsampler convs, output
