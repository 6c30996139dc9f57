"""One process trains CMDSR and its baseline on the same device-made batches within a
budget; scripts/gpu_train.py wraps it with evaluation. All on the CPU with tiny networks."""

from __future__ import annotations

import copy
import importlib.util
import json
import threading
from pathlib import Path
from types import ModuleType

import pytest
import torch

from engine.checkpoint import load_model, read_checkpoint
from engine.config import apply_overrides
from engine.data import write_synthetic_photos
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_damage_head
from engine.training.device_data import DevicePhotos, DeviceTaskSampler
from engine.training.model_init import build_training_model
from engine.training.optimisers import build_optimisers
from engine.training.pair import Member, baseline_config, device_step, train_pair, use_fused_adam
from engine.training.run_folder import RunWriter
from engine.training.step import train_step

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model.channels=32", "model.blocks=2", "model.cond_channels=16", "model.support_size=4",
        "lr_patch=12", "log_every=2", "threads=1", "device=cpu"]


def _cfg(*extra: str, preset: str = "studio-cpu") -> TrainConfig:
    return apply_overrides(TrainConfig.preset(preset), [*TINY, *extra])


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_synthetic_photos(root / "train", 3, (96, 120), seed=0)
    write_synthetic_photos(root / "val", 2, (96, 96), seed=1)
    return root


def test_pair_run_trains_both_models_and_exports(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "pair"
    summary = train_pair(_cfg(), corpus / "train", out, budget_s=4.0)
    assert summary["stopped_by"] == "budget"
    assert summary["steps"] >= 1
    # steps start until the budget less the reserve for the saves is spent, none after it
    # (wall-clock bounds that hold however slow a loaded machine makes each step)
    stop_at = 4.0 - summary["reserve_s"]
    assert 0 < summary["reserve_s"] < 4.0
    assert summary["last_step_started_s"] < stop_at <= summary["train_s"]
    assert json.loads((out / "pair.json").read_text())["steps"] == summary["steps"]
    for name, stem, conditioned in (("cmdsr", "cmdsr_x4", True), ("baseline", "basenet_x4", False)):
        _, _, meta = read_checkpoint(out / name / "latest.pt")
        assert meta["step"] == summary["last_step"]
        assert "train_state" in meta
        records = [json.loads(line) for line in (out / name / "metrics.jsonl").read_text().splitlines()]
        assert records and records[-1]["step"] == summary["last_step"]
        assert all(r["l1"] > 0 for r in records)
        if conditioned:
            assert "contrastive" in records[-1]
        shipped = torch.load(out / f"{stem}.pt", weights_only=True)
        full = torch.load(out / f"{stem}_fp32.pt", weights_only=True)
        key = "sr_net.input_conv.weight"
        assert shipped["params"][key].dtype == torch.float16
        assert full["params"][key].dtype == torch.float32
        assert shipped["training"]["step"] == summary["last_step"]
        model = load_model(out / f"{stem}_fp32.pt")
        assert model.conditioned is conditioned


def test_device_step_equals_train_step(corpus: Path) -> None:
    """The sync-free step makes the same update as engine.training.step.train_step."""
    for extra in ([], ["task_pairing=false", "cond_every=2"], ["damage_weight=1.0"]):
        cfg = _cfg(*extra)
        photos = DevicePhotos.from_folder(corpus / "train", "cpu", cfg.hr_patch, cfg.hr_downscale)
        batch = DeviceTaskSampler.from_config(photos, cfg).batch(0)
        for mcfg in (cfg, baseline_config(cfg)):
            a = build_training_model(mcfg, torch.device("cpu"))
            b = copy.deepcopy(a)
            opt_a, opt_b = build_optimisers(a, mcfg), build_optimisers(b, mcfg)
            member = Member("m", mcfg, b, opt_b, RunWriter("unused", enabled=False))
            for step in range(2):
                res = train_step(a, opt_a, batch, step, mcfg, torch.Generator().manual_seed(3),
                                 torch.device("cpu"))
                device_step(member, batch, step, torch.Generator().manual_seed(3), torch.device("cpu"))
                means = member.take_means()
                assert means["l1"] == pytest.approx(res.l1, rel=1e-5)
                if res.contrastive is not None:
                    assert means["contrastive"] == pytest.approx(res.contrastive, rel=1e-4)
                else:
                    assert "contrastive" not in means
                if res.damage is not None:
                    assert means["damage"] == pytest.approx(res.damage, rel=1e-4)
                else:
                    assert "damage" not in means
                # Adam's normalised step magnifies rounding differences (channels_last convs)
                # in weights that start at zero: an absolute tolerance far below the steps
                for (name, pa), pb in zip(a.named_parameters(), b.parameters(), strict=True):
                    torch.testing.assert_close(pa, pb, rtol=1e-4, atol=1e-4, msg=name)


def test_pair_run_with_a_damage_readout_exports_and_resumes_it(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "pair"
    cfg = _cfg("damage_weight=1.0")
    assert baseline_config(cfg).damage_weight == 0.0
    train_pair(cfg, corpus / "train", out, budget_s=60, max_steps=2)
    first = read_damage_head(out / "cmdsr_x4.pt")
    assert first is not None and read_damage_head(out / "basenet_x4.pt") is None
    second = train_pair(cfg, corpus / "train", out, budget_s=60, resume=True, max_steps=4)
    assert (second["first_step"], second["last_step"]) == (2, 4)
    after = read_damage_head(out / "cmdsr_x4_fp32.pt")
    assert after is not None and not torch.equal(after.net[0].weight, first.net[0].weight)


def test_fused_adam_makes_the_same_update() -> None:
    cfg = _cfg()
    a = build_training_model(cfg, torch.device("cpu"))
    b = copy.deepcopy(a)
    opt_a, opt_b = build_optimisers(a, cfg), build_optimisers(b, cfg)
    use_fused_adam(opt_b)
    assert all(g["fused"] for g in opt_b.base.param_groups)
    x = torch.rand(4, 3, 8, 8) * 255
    sup = torch.rand(2, 4, 3, 8, 8) * 255
    for model, opt in ((a, opt_a), (b, opt_b)):
        model(x, sup).mean().backward()
        opt.base.step()
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-5, atol=1e-6)


def test_stop_event_checkpoints_and_resume_continues(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "pair"
    stop = threading.Event()
    stop.set()
    first = train_pair(_cfg(), corpus / "train", out, budget_s=60, stop=stop)
    assert first["stopped_by"] == "signal" and first["steps"] == 0
    assert (out / "cmdsr_x4.pt").exists() and (out / "basenet_x4_fp32.pt").exists()
    second = train_pair(_cfg(), corpus / "train", out, budget_s=60, resume=True, max_steps=2)
    assert (second["first_step"], second["last_step"], second["stopped_by"]) == (0, 2, "steps")
    third = train_pair(_cfg(), corpus / "train", out, budget_s=60, resume=True, max_steps=3)
    assert (third["first_step"], third["last_step"]) == (2, 3)
    with pytest.raises(Exception, match="already holds a run"):
        train_pair(_cfg(), corpus / "train", out, budget_s=60)


def _gpu_train() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "scripts" / "gpu_train.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_gpu_train_script_trains_evaluates_and_summarises(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["--corpus", str(corpus), "--out", str(out), "--budget", "4", "--device", "cpu",
            "--preset", "studio-cpu", "--init-cmdsr", "none", "--init-baseline", "none",
            "--eval-crop", "96"]
    for item in TINY:
        argv += ["--set", item]
    assert _gpu_train().main(argv) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["basenet_x4.pt", "basenet_x4_fp32.pt", "cmdsr_x4.pt", "cmdsr_x4_fp32.pt",
                     "eval.md", "gpu_train.log", "metrics.jsonl", "summary.json"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["train"]["steps"] >= 1
    methods = {r["method"] for r in summary["eval"]}
    assert {"bicubic", "baseline", "CMDSR-random", "CMDSR-auto"} <= methods
    assert summary["headline"]["eval_psnr_y"]["bicubic"] > 10
    assert "eval_start" not in summary  # no starting weights given
    models = {json.loads(line)["model"] for line in (out / "metrics.jsonl").read_text().splitlines()}
    assert models == {"cmdsr", "baseline"}
    assert "paper-test" in (out / "eval.md").read_text()


def test_gpu_train_defaults_to_the_repos_weights() -> None:
    mod = _gpu_train()
    found = mod.default_weights("cmdsr_x4")
    assert found is not None and found.name in ("cmdsr_x4_fp32.pt", "cmdsr_x4.pt")
    assert mod.default_weights("no_such_model") is None
    assert mod.weights_arg("none") is None
