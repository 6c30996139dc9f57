"""The training loop: configs, the paper's two optimisers, loss falling, exact resume,
checkpoints, the contrastive loss separating degradations."""

from __future__ import annotations

import dataclasses
import json
import math
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.checkpoint import load_model, read_checkpoint
from engine.config import apply_overrides, dumps_json, dumps_toml, from_dict, load_toml
from engine.data import write_synthetic_photos
from engine.degrade import DegradationConfig
from engine.errors import ConfigError
from engine.model import ModelConfig
from engine.training.batches import TaskBatches, open_training_source
from engine.training.config import TrainConfig, TrainProgress
from engine.training.loop import train
from engine.training.losses import derangement, task_contrastive_loss
from engine.training.model_init import build_training_model
from engine.training.optimisers import build_optimisers
from engine.training.run_folder import load_run_config, read_metrics
from engine.training.step import train_step

TINY = ModelConfig(scale=4, channels=8, blocks=2, support_size=3, cond_channels=8)


def tiny_cfg(**kw) -> TrainConfig:
    base = dict(
        model=TINY, steps=12, tasks_per_batch=2, lr_patch=8, lr_base=2e-3, lr_cond=2e-3,
        cond_every=3, checkpoint_every=4, log_every=2, val_every=6, num_workers=0,
        cache_crops_per_image=4, cache_crop_size=48, val_support_patch=8,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root / "train", 4, (96, 112), seed=2)
    write_synthetic_photos(root / "val", 2, (48, 48), seed=3)
    return root


# ----------------------------------------------------------------------------- configs


def test_presets_are_valid_and_distinct():
    ref = TrainConfig.preset("reference")
    assert (ref.tasks_per_batch, ref.model.support_size, ref.lr_patch) == (8, 20, 48)
    assert ref.milestones == (500_000, 900_000) and ref.cond_every == 10 and ref.cond_l1_weight == 0.1
    assert ref.degradation == DegradationConfig.preset("paper") and ref.steps == 1_000_000
    cpu = TrainConfig.preset("cpu")
    # the paper's architecture, so the shipped model keeps the authors' shapes
    assert (cpu.model.channels, cpu.model.blocks, cpu.model.support_size) == (64, 10, 20)
    assert cpu.cache_crops_per_image > 0 and cpu.sr_patches < cpu.model.support_size
    with pytest.raises(ConfigError, match="unknown training preset"):
        TrainConfig.preset("gpu9000")


def test_toml_round_trip_and_unknown_keys(tmp_path):
    cfg = tiny_cfg(degradation=DegradationConfig.preset("real"), milestones=(5, 9))
    path = tmp_path / "c.toml"
    path.write_text(dumps_toml(cfg))
    assert from_dict(TrainConfig, load_toml(path)) == cfg
    assert json.loads(dumps_json(cfg))["model"]["channels"] == 8
    path.write_text("stpes = 5\n")
    with pytest.raises(ConfigError, match="unknown setting stpes; valid keys"):
        from_dict(TrainConfig, load_toml(path))
    path.write_text("[model]\nchanels = 5\n")
    with pytest.raises(ConfigError, match="model.chanels"):
        from_dict(TrainConfig, load_toml(path))
    path.write_text("steps = 'many'\n")
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        from_dict(TrainConfig, load_toml(path))
    path.write_text("steps = [\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_toml(path)


def test_from_toml_merges_over_a_preset(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('preset = "cpu"\nsteps = 77\ndegradation = "mild"\n[model]\nblocks = 4\n')
    cfg = TrainConfig.from_toml(path)
    cpu = TrainConfig.preset("cpu")
    assert cfg.steps == 77 and cfg.model.blocks == 4 and cfg.model.channels == cpu.model.channels
    assert cfg.degradation == DegradationConfig.preset("mild") and cfg.lr_patch == cpu.lr_patch


def test_overrides_convert_types_and_reject_typos():
    cfg = apply_overrides(tiny_cfg(), [
        "steps=1_000", "lr_base=3e-4", "model.conditioning=false", "milestones=10,20",
        "degradation=paper-test", "degradation.noise_std=[1, 2]", "amp=bf16",
    ])
    assert cfg.steps == 1000 and cfg.lr_base == 3e-4 and cfg.model.conditioning is False
    assert cfg.milestones == (10, 20) and cfg.degradation.kernel_size == 7
    assert cfg.degradation.noise_std == (1.0, 2.0) and cfg.amp == "bf16"
    with pytest.raises(ConfigError, match="unknown setting 'stepz'"):
        apply_overrides(cfg, ["stepz=3"])
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        apply_overrides(cfg, ["steps=1.5"])
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides(cfg, ["steps"])
    with pytest.raises(ConfigError, match="amp must be one of"):
        apply_overrides(cfg, ["amp=fp8"])
    with pytest.raises(ConfigError, match="tasks_per_batch must be at least 2"):
        apply_overrides(tiny_cfg(), ["tasks_per_batch=1"])


# ----------------------------------------------------------------------------- pieces


def test_contrastive_loss_known_value_and_derangement():
    a = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    perm = torch.tensor([1, 0])
    loss, d_in, d_x = task_contrastive_loss(a, b, perm)
    # d_in = [1, 0], d_x = [|a0 - b1| = 1, |a1 - b0| = sqrt(2)]
    sp = lambda v: math.log1p(math.exp(v))  # noqa: E731
    expected = (sp(1) + sp(-1) + sp(0) + sp(-2)) / 2
    assert float(loss) == pytest.approx(expected, abs=1e-6)
    assert float(d_in) == pytest.approx(0.5) and float(d_x) == pytest.approx((1 + 2**0.5) / 2)
    big = torch.full((2, 4), 100.0)  # stable for huge distances
    assert torch.isfinite(task_contrastive_loss(big, -big, perm)[0])
    g = torch.Generator().manual_seed(0)
    for n in (2, 3, 8):
        for _ in range(20):
            p = derangement(n, g)
            assert sorted(p.tolist()) == list(range(n)) and not (p == torch.arange(n)).any()


def test_identity_init_starts_as_nearest_upscaling():
    cfg = tiny_cfg(init="identity")
    model = build_training_model(cfg, torch.device("cpu"))
    x = torch.rand(2, 3, 6, 7) * 255
    sup = torch.rand(2, 3, 3, 6, 6) * 255
    ref = F.interpolate(x, scale_factor=4, mode="nearest")
    assert torch.allclose(model(x, sup), ref, atol=1e-3)


def _batch(data, tmp_path, cfg, step=0):
    src = open_training_source(data / "train", cfg.hr_patch, tmp_path / "cache", 4, 48, 0)
    ds = TaskBatches(src, cfg.degradation, 4, cfg.lr_patch, cfg.model.support_size,
                     cfg.tasks_per_batch, cfg.seed, 100)
    return ds[step]


def test_one_backward_gives_each_optimiser_the_paper_gradients(data, tmp_path):
    cfg = tiny_cfg()
    model = build_training_model(cfg, torch.device("cpu"))
    batch = _batch(data, tmp_path, cfg)
    lr = batch["lr"].float()
    hr = batch["hr"].float()
    s = cfg.model.support_size
    perm_gen = torch.Generator().manual_seed(5)
    perm = derangement(2, torch.Generator().manual_seed(5))
    # expected: BaseNet grads of L1; ConditionNet grads of contrastive + 0.1 * L1
    c1, c2 = model.condition(lr[:, :s]), model.condition(lr[:, s:])
    l1 = F.l1_loss(model.sr_net(lr[:, :s].flatten(0, 1), c1), hr[:, :s].flatten(0, 1))
    con = task_contrastive_loss(c1, c2, perm)[0]
    base = list(model.sr_net.parameters())
    cond = list(model.condition_net.parameters())
    g_base = torch.autograd.grad(l1, base, retain_graph=True)
    g_cond = torch.autograd.grad(con + 0.1 * l1, cond)
    # one Adam step with lr 0 would not show grads: capture them via a zero-lr optimiser
    cfg0 = dataclasses.replace(cfg, lr_base=1e-12, lr_cond=1e-12)
    opt = build_optimisers(model, cfg0)
    train_step(model, opt, batch, 0, cfg0, perm_gen, torch.device("cpu"))
    for p, g in zip(base, g_base, strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-5)
    for p, g in zip(cond, g_cond, strict=True):
        assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-6)


def test_condition_net_updates_only_every_k_steps(data, tmp_path):
    cfg = tiny_cfg(cond_every=3)
    model = build_training_model(cfg, torch.device("cpu"))
    opt = build_optimisers(model, cfg)
    gen = torch.Generator().manual_seed(0)
    batch = _batch(data, tmp_path, cfg)

    def snap(mod):
        return [p.detach().clone() for p in mod.parameters()]

    for step, cond_updates in ((0, True), (1, False), (2, False), (3, True)):
        before_c, before_b = snap(model.condition_net), snap(model.sr_net)
        res = train_step(model, opt, batch, step, cfg, gen, torch.device("cpu"))
        changed_c = any(not torch.equal(a, b) for a, b in zip(before_c, snap(model.condition_net), strict=True))
        changed_b = any(not torch.equal(a, b) for a, b in zip(before_b, snap(model.sr_net), strict=True))
        assert changed_c == cond_updates and changed_b
        assert (res.contrastive is not None) == cond_updates
    assert opt.cond_sched.last_epoch == 2 and opt.base_sched.last_epoch == 4


# ----------------------------------------------------------------------------- the loop


def _collect(out: list):
    return lambda p: out.append(p)


def test_loss_falls_and_the_run_folder_is_complete(data, tmp_path):
    cfg = tiny_cfg(steps=30, checkpoint_every=10, keep_checkpoints=2, val_every=15, log_every=5)
    seen: list[TrainProgress] = []
    final = train(cfg, tmp_path / "run", data / "train", data / "val", progress=_collect(seen))
    run = tmp_path / "run"
    assert [p.step for p in seen] == list(range(1, 31))
    first = np.mean([p.l1 for p in seen[:5]])
    last = np.mean([p.l1 for p in seen[-5:]])
    assert last < 0.8 * first
    assert final == run / "checkpoints" / "step_0000030.pt"
    assert sorted(p.name for p in (run / "checkpoints").glob("*.pt")) == ["step_0000020.pt", "step_0000030.pt"]
    assert [p.val_psnr is not None for p in seen].count(True) == 2
    assert seen[-1].checkpoint == final and seen[-1].eta_s == 0
    assert seen[-1].steps_per_s > 0 and 0 <= seen[-1].data_wait_share <= 1
    assert math.isfinite(seen[-1].d_inner) and math.isfinite(seen[-1].d_cross)
    # the checkpoint loads as a model; it carries the training state
    model = load_model(run / "latest.pt")
    assert model.config == TINY
    _, _, meta = read_checkpoint(final)
    assert meta["step"] == 30 and "optimisers" in meta["train_state"]
    assert load_run_config(run) == cfg
    records = read_metrics(run / "metrics.jsonl")
    train_recs = [r for r in records if r["kind"] == "train"]
    assert [r["step"] for r in train_recs] == [5, 10, 15, 20, 25, 30]
    assert all("d_inner" in r and r["steps_per_s"] > 0 for r in train_recs)
    vals = [r for r in records if r["kind"] == "val"]
    assert [r["step"] for r in vals] == [15, 30] and "bicubic_psnr" in vals[0]
    assert (run / "plot.png").stat().st_size > 1000
    info = json.loads((run / "run.json").read_text())
    assert info["data_dir"] == str((data / "train").resolve())


def test_resume_continues_exactly_like_an_uninterrupted_run(data, tmp_path):
    cfg = tiny_cfg(steps=12, checkpoint_every=5)
    full: list[TrainProgress] = []
    train(cfg, tmp_path / "a", data / "train", progress=_collect(full))

    cancel = threading.Event()
    part: list[TrainProgress] = []

    def stop_at_7(p):
        part.append(p)
        if p.step == 7:
            cancel.set()

    paused = train(cfg, tmp_path / "b", data / "train", progress=stop_at_7, cancel=cancel)
    assert paused.name == "step_0000007.pt" and part[-1].step == 7
    rest: list[TrainProgress] = []
    final = train(cfg, tmp_path / "b", resume=True, progress=_collect(rest))
    assert [p.step for p in rest] == list(range(8, 13))
    assert [p.l1 for p in part + rest] == [p.l1 for p in full]
    # contrastive / distances shown right after the resume are the last ones before it
    assert [(p.contrastive, p.d_inner) for p in part + rest] == [(p.contrastive, p.d_inner) for p in full]
    _, sa, _ = read_checkpoint(tmp_path / "a" / "latest.pt")
    _, sb, _ = read_checkpoint(final)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
    # the metrics log of the resumed run matches too (lines after the pause were redone)
    la = [(r["step"], r["l1"]) for r in read_metrics(tmp_path / "a" / "metrics.jsonl")]
    lb = [(r["step"], r["l1"]) for r in read_metrics(tmp_path / "b" / "metrics.jsonl")]
    assert la[-1] == lb[-1]


def test_run_folder_guards(data, tmp_path):
    cfg = tiny_cfg(steps=2)
    with pytest.raises(ConfigError, match="no checkpoint to resume"):
        train(cfg, tmp_path / "new", data / "train", resume=True)
    train(cfg, tmp_path / "r", data / "train")
    with pytest.raises(ConfigError, match="already holds a training run"):
        train(cfg, tmp_path / "r", data / "train")
    other = dataclasses.replace(cfg, model=dataclasses.replace(TINY, channels=16))
    with pytest.raises(ConfigError, match="cannot change on resume"):
        train(other, tmp_path / "r", resume=True)
    # a finished run extended with more steps
    seen: list[TrainProgress] = []
    train(dataclasses.replace(cfg, steps=4), tmp_path / "r", resume=True, progress=_collect(seen))
    assert [p.step for p in seen] == [3, 4]


def test_cancel_before_any_step_still_writes_a_checkpoint(data, tmp_path):
    cancel = threading.Event()
    cancel.set()
    path = train(tiny_cfg(), tmp_path / "c", data / "train", cancel=cancel)
    assert path.exists() and read_checkpoint(path)[2]["step"] == 0


def test_baseline_mode_trains_l1_only(data, tmp_path):
    cfg = tiny_cfg(model=dataclasses.replace(TINY, conditioning=False), steps=4, tasks_per_batch=1)
    seen: list[TrainProgress] = []
    train(cfg, tmp_path / "base", data / "train", data / "val", progress=_collect(seen))
    assert all(math.isnan(p.contrastive) and math.isnan(p.d_inner) for p in seen)
    model = load_model(tmp_path / "base" / "latest.pt")
    assert not model.conditioned and model.condition_net is None


def test_contrastive_loss_separates_two_degradations_after_short_training(data, tmp_path):
    # two clearly different degradations: sharp and clean vs. very blurred
    two = DegradationConfig(blur_sigma=(0.2, 4.0), sigma_step=3.8, noise_std=(0.0, 0.0))
    cfg = tiny_cfg(model=dataclasses.replace(TINY, cond_channels=32), degradation=two, steps=60,
                   cond_every=1, tasks_per_batch=4, lr_cond=2e-3,
                   checkpoint_every=1000, log_every=1000, val_every=1000)
    train(cfg, tmp_path / "con", data / "train")
    model = load_model(tmp_path / "con" / "latest.pt")
    src = open_training_source(data / "train", cfg.hr_patch, tmp_path / "con" / "cache", 4, 48, 0)
    batch = TaskBatches(src, two, 4, cfg.lr_patch, 3, 8, seed=99, length=1)[0]  # unseen tasks
    lr = batch["lr"].float()
    sig = batch["sigma"]
    with torch.no_grad():
        a, b = model.condition(lr[:, :3]), model.condition(lr[:, 3:])
    same = torch.stack([(a[i] - b[i]).norm() for i in range(8)])
    diff = torch.stack([(a[i] - b[j]).norm() for i in range(8) for j in range(8) if sig[i] != sig[j]])
    assert len(diff), "both degradations should appear among 8 tasks"
    assert float(same.mean()) < 0.6 * float(diff.mean())
    # the loss's pull term is lower for same-task pairs than for pairs of different tasks
    assert float(F.softplus(same**2).mean()) < float(F.softplus(diff**2).mean())


def test_bf16_autocast_runs_on_cpu_and_fp16_needs_cuda(data, tmp_path):
    seen: list[TrainProgress] = []
    train(tiny_cfg(steps=2, amp="bf16"), tmp_path / "bf16", data / "train", progress=_collect(seen))
    assert len(seen) == 2 and all(math.isfinite(p.l1) for p in seen)
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="fp16 needs a CUDA GPU"):
            train(tiny_cfg(steps=1, amp="fp16"), tmp_path / "fp16", data / "train")


def test_init_from_copies_matching_weights(data, tmp_path):
    base_cfg = tiny_cfg(model=dataclasses.replace(TINY, conditioning=False), steps=2, tasks_per_batch=1)
    train(base_cfg, tmp_path / "base", data / "train")
    cfg = tiny_cfg(init_from=str(tmp_path / "base" / "latest.pt"))
    model = build_training_model(cfg, torch.device("cpu"))
    base = load_model(tmp_path / "base" / "latest.pt")
    assert torch.equal(model.sr_net.input_conv.weight, base.sr_net.input_conv.weight)
    assert model.condition_net is not None  # the ConditionNet starts fresh
