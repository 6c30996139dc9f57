"""Condition-first training: the SR stage started from a conditioning-off model or from the
condition stage's file, the bicubic-weighted L1, the ConditionNet held for
``cond_freeze_steps``, and the condition stage itself (standardisation, pause and resume, in
``train`` and ``cmdsr train``). CPU only, tiny networks and photos."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from engine.checkpoint import load_model, read_checkpoint, save_model
from engine.cli import main
from engine.damage_head import attach_damage_head, damage_head_of
from engine.data import write_synthetic_photos
from engine.model import ModelConfig, build_model
from engine.training.condition import (
    MODEL_FILE,
    ConditionProgress,
    stage_config,
    standardise_condition,
    train_condition,
)
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head
from engine.training.damage_readout import training_damage_head
from engine.training.device_data import DevicePhotos, DeviceTaskSampler
from engine.training.loop import train
from engine.training.losses import sr_loss
from engine.training.model_init import build_training_model
from engine.training.optimisers import build_optimisers
from engine.training.pair import Member, device_step
from engine.training.run_folder import RunWriter, load_run_config, read_metrics
from engine.training.step import train_step

CPU = torch.device("cpu")
TINY = ModelConfig(channels=8, blocks=1, support_size=2, cond_channels=8)
TINY_HP = dataclasses.replace(TINY, condition_input="highpass")


def stage_cfg(**kw) -> TrainConfig:
    base = dict(model=TINY_HP, steps=2, tasks_per_batch=4, lr_patch=8, num_workers=0,
                device="cpu", threads=1, log_every=1, checkpoint_every=100,
                condition_steps=4, condition_tasks=4, condition_patch=12, damage_weight=1.0,
                task_pairing=True, cond_every=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root / "train", 3, (64, 72), seed=2)
    write_synthetic_photos(root / "val", 1, (48, 48), seed=3)
    return root


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# ----------------------------------------------------------------------------- starting points


def test_start_from_a_conditioning_off_model_upscales_as_it_does(tmp_path, seeded):
    base = build_model(dataclasses.replace(TINY, conditioning=False))
    with torch.no_grad():  # a trained-looking BaseNet
        for p in base.parameters():
            p.add_(0.01 * torch.randn_like(p))
    path = save_model(base, tmp_path / "basenet.pt")
    model = build_training_model(TrainConfig(model=TINY, init_from=str(path), device="cpu"), CPU)
    mods = model.sr_net.modulations
    assert mods is not None
    for m in mods.modulations:  # identity: weight 0, bias 1
        assert torch.equal(m.weight, torch.zeros_like(m.weight))
        assert torch.equal(m.bias, torch.ones_like(m.bias))
    model.eval()
    base.eval()
    lr = torch.rand(2, 3, 10, 8, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        expected = base(lr)
        for seed in range(3):  # whatever the support says, the output is the start's
            support = torch.rand(2, 2, 3, 12, 12, generator=torch.Generator().manual_seed(seed)) * 255
            torch.testing.assert_close(model(lr, support), expected, rtol=0, atol=1e-3)


def test_a_damage_readout_in_the_start_file_is_carried_over(tmp_path, seeded):
    cfg = TrainConfig(model=TINY_HP, device="cpu", damage_weight=1.0)
    start = build_model(TINY_HP)
    head = training_damage_head(cfg, draws=200)
    with torch.no_grad():
        for p in head.parameters():
            p.normal_()
        head.in_mean.fill_(0.25)
        head.in_std.fill_(3.0)
    attach_damage_head(start, head)
    path = save_model(start, tmp_path / "condition.pt")
    model = build_training_model(dataclasses.replace(cfg, init_from=str(path)), CPU)
    got = damage_head_of(model)
    assert got is not None
    assert _same(_params(got), _params(head))
    assert _same(_params(model.condition_net), _params(start.condition_net))
    # a run without a readout leaves it out; a fresh one is not the saved one
    assert damage_head_of(build_training_model(dataclasses.replace(cfg, init_from=str(path),
                                                                   damage_weight=0.0), CPU)) is None
    fresh = damage_head_of(build_training_model(cfg, CPU))
    assert fresh is not None and not _same(_params(fresh), _params(head))


# ----------------------------------------------------------------------------- SR stage losses


def test_bicubic_weighting_divides_each_tasks_l1_by_its_bicubic_l1():
    # flat patches: the bicubic upscale of a flat LR patch is that flat level exactly
    lr_levels, hr_levels, sr_levels = [100.0, 50.0, 30.0], [110.0, 48.0, 30.0], [104.0, 49.0, 31.0]
    q, h = 2, 3  # two patches per task, 3x3 LR, x4
    lr = torch.cat([torch.full((q, 3, h, h), v) for v in lr_levels])
    hr = torch.cat([torch.full((q, 3, 4 * h, 4 * h), v) for v in hr_levels])
    sr = torch.cat([torch.full((q, 3, 4 * h, 4 * h), v) for v in sr_levels])
    # task 3's bicubic is exact: its reference is floored at 0.5 grey levels
    expected = (6 / 10 + 1 / 2 + 1 / 0.5) / 3
    assert float(sr_loss(sr, hr, lr, 3, "bicubic")) == pytest.approx(expected, rel=1e-5)
    gen = torch.Generator().manual_seed(0)
    sr_r, hr_r = torch.rand(6, 3, 12, 12, generator=gen) * 255, torch.rand(6, 3, 12, 12, generator=gen) * 255
    assert torch.equal(sr_loss(sr_r, hr_r, lr, 3, "none"), F.l1_loss(sr_r, hr_r))


@pytest.mark.parametrize("stepper", ["train_step", "device_step"])
def test_cond_freeze_steps_hold_the_condition_net(photos, stepper):
    cfg = stage_cfg(cond_freeze_steps=2, lr_cond=1e-2)
    dp = DevicePhotos.from_folder(photos / "train", "cpu", cfg.hr_patch, cfg.hr_downscale)
    sampler = DeviceTaskSampler.from_config(dp, cfg)
    model = build_training_model(cfg, CPU)
    opt = build_optimisers(model, cfg)
    member = Member("m", cfg, model, opt, RunWriter("unused", enabled=False))
    head = damage_head_of(model)
    assert model.condition_net is not None and head is not None
    cond0, head0, sr0 = _params(model.condition_net), _params(head), _params(model.sr_net)
    gen = torch.Generator().manual_seed(1)

    def step(i: int) -> None:
        if stepper == "train_step":
            train_step(model, opt, sampler.batch(i), i, cfg, gen, CPU)
        else:
            device_step(member, sampler.batch(i), i, gen, CPU)

    for i in range(2):
        step(i)
        assert _same(_params(model.condition_net), cond0), f"moved at step {i}"
        assert _same(_params(head), head0)
    assert not _same(_params(model.sr_net), sr0)  # the SR network learnt meanwhile
    step(2)
    assert not _same(_params(model.condition_net), cond0)  # free from the first step after


# ----------------------------------------------------------------------------- condition stage


def test_standardisation_keeps_the_readouts_estimates(photos, seeded):
    cfg = stage_config(stage_cfg())
    model = build_training_model(cfg, CPU).eval()
    net, head = model.condition_net, damage_head_of(model)
    assert net is not None and head is not None
    dp = DevicePhotos.from_folder(photos / "train", "cpu", cfg.condition_patch * 4, cfg.hr_downscale)
    sampler = DeviceTaskSampler(dp, cfg.degradation, 4, cfg.condition_patch, 2, 4, cfg.seed,
                                paired=True)
    lr = sampler.batch(0)["lr"].float()
    support = torch.cat([lr[:, :2], lr[:, 2:]])
    with torch.no_grad():
        head.in_mean.copy_(net(support).mean(0))  # a readout trained on the unstandardised one
        head.in_std.copy_(net(support).std(0) + 0.01)
        before_cond, before, before_n = net(support), head(net(support)), head.normalised(net(support))
    standardise_condition(model, sampler, batches=3)
    with torch.no_grad():
        after_cond, after, after_n = net(support), head(net(support)), head.normalised(net(support))
        pooled = torch.cat([net(torch.cat([b[:, :2], b[:, 2:]]))
                            for b in (sampler.batch(10_000_000 + i)["lr"].float() for i in range(3))])
    assert not torch.allclose(after_cond, before_cond, atol=1e-3)  # the condition did change
    torch.testing.assert_close(pooled.mean(0), torch.zeros(8), rtol=0, atol=1e-4)
    torch.testing.assert_close(pooled.std(0), torch.ones(8), rtol=0, atol=1e-3)
    torch.testing.assert_close(after_n, before_n, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-4)


def test_condition_stage_writes_a_standardised_model_file(photos, tmp_path):
    cfg = stage_cfg()
    seen: list[ConditionProgress] = []
    path = train_condition(cfg, photos / "train", tmp_path / "cond", progress=seen.append)
    assert path == tmp_path / "cond" / MODEL_FILE and path.exists()
    assert [p.step for p in seen] == [1, 2, 3, 4] and seen[-1].total_steps == 4
    model = load_model(path)
    assert model.config == TINY_HP
    assert read_damage_head(path) is not None and damage_head_of(model) is not None
    net = model.condition_net
    assert net is not None and not torch.equal(net.cond_shift, torch.zeros(8))
    records = [r for r in read_metrics(tmp_path / "cond" / RunWriter.METRICS) if r["kind"] == "condition"]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["damage"] > 0 for r in records)


def test_condition_stage_pauses_and_resumes_to_the_same_end(photos, tmp_path):
    cfg = stage_cfg()
    whole = train_condition(cfg, photos / "train", tmp_path / "whole")
    stop = threading.Event()

    def stop_at_2(p: ConditionProgress) -> None:
        if p.step == 2:
            stop.set()

    out = tmp_path / "paused"
    assert train_condition(cfg, photos / "train", out, stop=stop, progress=stop_at_2) is None
    assert not (out / MODEL_FILE).exists()
    assert read_checkpoint(out / RunWriter.LATEST)[2]["step"] == 2
    with pytest.raises(Exception, match="resume it"):
        train_condition(cfg, photos / "train", out)
    resumed = train_condition(cfg, photos / "train", out, resume=True)
    assert resumed == out / MODEL_FILE
    assert read_checkpoint(resumed)[2]["step"] == 4
    a, b = load_model(whole), load_model(resumed)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6, msg=name)


def test_train_runs_the_condition_stage_then_the_sr_stage_from_it(photos, tmp_path):
    cfg = stage_cfg(cond_freeze_steps=2)  # held for the whole (2-step) SR stage
    run = tmp_path / "run"
    cond_seen: list[ConditionProgress] = []
    last = train(cfg, run, photos / "train", condition_progress=cond_seen.append)
    stage_file = run / "condition" / MODEL_FILE
    assert stage_file.exists() and [p.step for p in cond_seen] == [1, 2, 3, 4]
    assert read_checkpoint(last)[2]["step"] == 2
    assert Path(load_run_config(run).init_from) == stage_file
    stage, final = load_model(stage_file), load_model(run / RunWriter.LATEST)
    assert _same(_params(final.condition_net), _params(stage.condition_net))
    assert not _same(_params(final.sr_net), _params(stage.sr_net))
    assert read_damage_head(run / RunWriter.LATEST) is not None


def test_a_run_paused_in_the_condition_stage_resumes_with_cmdsr_train(photos, tmp_path, capsys):
    cfg = stage_cfg(val_every=1, val_support_patch=8)
    run = tmp_path / "run"
    cancel = threading.Event()

    def pause_at_2(p: ConditionProgress) -> None:
        if p.step == 2:
            cancel.set()

    paused = train(cfg, run, photos / "train", val_dir=photos / "val", cancel=cancel,
                   condition_progress=pause_at_2)
    assert paused == run / "condition" / RunWriter.LATEST
    assert not (run / RunWriter.LATEST).exists() and (run / RunWriter.CONFIG).exists()
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0, capsys.readouterr().err
    assert read_checkpoint(run / "condition" / MODEL_FILE)[2]["step"] == 4
    assert read_checkpoint(run / RunWriter.LATEST)[2]["step"] == 2
    records = read_metrics(run / RunWriter.METRICS)
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 2]
    # the validation folder the run started with is still used after the resume
    assert [r["step"] for r in records if r["kind"] == "val"] == [1, 2]



def test_a_run_started_in_a_relative_folder_resumes_from_anywhere(photos, tmp_path, monkeypatch):
    cfg = stage_cfg(steps=3)
    monkeypatch.chdir(tmp_path)
    cancel = threading.Event()

    def pause_at_1(p) -> None:
        if p.step == 1:
            cancel.set()

    train(cfg, "run", photos / "train", progress=pause_at_1, cancel=cancel)
    assert read_checkpoint(tmp_path / "run" / RunWriter.LATEST)[2]["step"] == 1
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(tmp_path / "run"), "--no-progress"]) == 0
    assert read_checkpoint(tmp_path / "run" / RunWriter.LATEST)[2]["step"] == 3
