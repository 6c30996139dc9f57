"""Multi-process training on the CPU (gloo): ``cmdsr train`` under torchrun with 2 processes
does what one process does with the whole batch, only rank 0 writes, and its checkpoint
resumes in a single process."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.checkpoint import read_checkpoint
from engine.config import dumps_toml
from engine.data import write_synthetic_photos
from engine.distributed import (
    SINGLE,
    DistContext,
    env_context,
    gather_rows,
    init_distributed,
    shard_range,
    sync_step,
)
from engine.errors import ConfigError
from engine.model import ModelConfig
from engine.training.batches import TaskBatches, open_training_source
from engine.training.config import TrainConfig
from engine.training.loop import train
from engine.training.run_folder import RunWriter, read_metrics

TINY = ModelConfig(scale=4, channels=8, blocks=2, support_size=3, cond_channels=8)
ROOT = Path(__file__).resolve().parents[2]


def tiny_cfg(**kw) -> TrainConfig:
    # cond_every=2: steps 0 and 2 update the ConditionNet (contrastive loss over ranks),
    # steps 1 and 3 do not (the ConditionNet's DDP wrapper sits out).
    base = dict(
        model=TINY, steps=4, tasks_per_batch=4, lr_patch=8, lr_base=2e-3, lr_cond=2e-3,
        cond_every=2, checkpoint_every=2, log_every=1, val_every=2, num_workers=0,
        cache_crops_per_image=4, cache_crop_size=48, val_support_patch=8, milestones=(3,),
        val_images=1, keep_checkpoints=5,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root / "train", 3, (80, 96), seed=5)
    write_synthetic_photos(root / "val", 1, (48, 48), seed=6)
    return root


# ----------------------------------------------------------------------------- pieces


def test_shard_range_splits_tasks_evenly_and_explains_uneven_batches():
    assert [shard_range(8, r, 4) for r in range(4)] == [range(0, 2), range(2, 4), range(4, 6), range(6, 8)]
    assert shard_range(5, 0, 1) == range(5)
    with pytest.raises(ConfigError, match=r"tasks_per_batch \(6\) must split evenly over 4 .*use 4 or 8"):
        shard_range(6, 1, 4)
    with pytest.raises(ValueError):
        shard_range(4, 2, 2)


def test_environment_context(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    assert env_context() == SINGLE and SINGLE.is_main and not SINGLE.enabled
    # torchrun --nproc_per_node 1 sets the variables for a single process: no group needed
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setenv("RANK", "0")
    ctx, device, owned = init_distributed("auto")
    assert (ctx, device.type, owned) == (SINGLE, "cpu", False)
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    ctx = env_context()
    assert (ctx.rank, ctx.world_size, ctx.local_rank, ctx.local_world_size) == (3, 4, 1, 2)
    assert ctx.enabled and not ctx.is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ConfigError, match="do not fit"):
        env_context()
    monkeypatch.setenv("RANK", "x")
    with pytest.raises(ConfigError, match="not an integer"):
        env_context()


def test_single_process_helpers_are_identity():
    x = torch.arange(6.0).reshape(3, 2)
    assert gather_rows(x, SINGLE) is x
    assert sync_step(1.5, True, SINGLE, torch.device("cpu")) == (1.5, True)
    assert DistContext(rank=1, world_size=2).enabled


def test_a_share_of_the_batch_is_the_same_tasks(photos, tmp_path):
    cfg = tiny_cfg()
    source = open_training_source(photos / "train", cfg.hr_patch, tmp_path, 4, 48, 0)
    args = (source, cfg.degradation, 4, cfg.lr_patch, TINY.support_size, 4, 0, 10)
    whole = TaskBatches(*args)[7]
    # the data of a step does not depend on the process count: what lets a run resume on
    # any number of processes
    for world in (2, 4):
        shares = [TaskBatches(*args, tasks=shard_range(4, r, world))[7] for r in range(world)]
        for key in ("lr", "hr", "sigma", "noise"):
            assert torch.equal(torch.cat([h[key] for h in shares]), whole[key])
    with pytest.raises(ValueError, match="does not fit"):
        TaskBatches(*args, tasks=range(3, 5))


def test_disabled_writer_writes_nothing(tmp_path):
    w = RunWriter(tmp_path / "run", enabled=False)
    w.write_config(tiny_cfg(), {"data_dir": "x"})
    w.log({"kind": "train", "step": 1})
    path = w.save_checkpoint({"a": 1}, 3)
    w.write_plot()
    assert path.name == "step_0000003.pt" and not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------- torchrun


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _torchrun(nproc: int, args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), "-m", "engine", "train", *args]
    return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)


def _params(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)[1]


def _assert_same_params(a: Path, b: Path) -> None:
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    for k in pa:
        assert torch.allclose(pa[k], pb[k], rtol=1e-4, atol=2e-5), (k, (pa[k] - pb[k]).abs().max())


def _run_files(run: Path) -> set[str]:
    return {p.relative_to(run).as_posix() for p in run.rglob("*") if p.is_file()
            and not p.relative_to(run).as_posix().startswith("cache/")}


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_whole_batch_and_resume_in_one(photos, tmp_path):
    cfg = tiny_cfg()
    # reference: one process, all 4 tasks per step, 4 steps (checkpoints at 2 and 4)
    one = tmp_path / "one"
    train(cfg, one, photos / "train", photos / "val")

    # the same run as 2 processes x 2 tasks under torchrun, paused at step 2
    (tmp_path / "cfg.toml").write_text(dumps_toml(cfg), encoding="utf-8")
    two = tmp_path / "two"
    res = _torchrun(2, ["--config", str(tmp_path / "cfg.toml"), "--data", str(photos / "train"),
                        "--val", str(photos / "val"), "--out", str(two), "--steps", "2",
                        "--no-progress"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("done:") == 1  # rank 1 stays quiet on the terminal
    _assert_same_params(one / "checkpoints" / "step_0000002.pt", two / "latest.pt")

    # rank 0 alone wrote the run folder: each record once, the effective batch reported
    assert _run_files(two) == {"config.toml", "run.json", "metrics.jsonl", "plot.png",
                               "latest.pt", "checkpoints/step_0000002.pt"}
    recs = read_metrics(two / "metrics.jsonl")
    assert [(r["kind"], r["step"]) for r in recs] == [("train", 1), ("train", 2), ("val", 2)]
    assert all(r["processes"] == 2 for r in recs if r["kind"] == "train")
    info = json.loads((two / "run.json").read_text())
    assert info["effective_batch"] == {"processes": 2, "tasks_per_process": 2, "tasks_per_step": 4}
    assert "effective batch: 4 tasks per step = 2 process(es) x 2" in (two / "config.toml").read_text()
    # the logged L1 is the mean over both processes' tasks: what one process logs
    ref = {r["step"]: r for r in read_metrics(one / "metrics.jsonl") if r["kind"] == "train"}
    for r in recs[:2]:
        assert r["l1"] == pytest.approx(ref[r["step"]]["l1"], rel=1e-4)
        if "contrastive" in r:
            assert r["contrastive"] == pytest.approx(ref[r["step"]]["contrastive"], rel=1e-4)
    val_one = [r for r in read_metrics(one / "metrics.jsonl") if r["kind"] == "val"][0]
    assert recs[2]["val_psnr"] == pytest.approx(val_one["val_psnr"], abs=0.01)

    # the 2-process checkpoint continues in 1 process to where the reference ended
    last = train(dataclasses.replace(cfg, steps=4), two, resume=True)
    assert last.name == "step_0000004.pt"
    _assert_same_params(one / "checkpoints" / "step_0000004.pt", two / "latest.pt")
    opt_one = read_checkpoint(one / "latest.pt")[2]["train_state"]["optimisers"]
    opt_two = read_checkpoint(two / "latest.pt")[2]["train_state"]["optimisers"]
    assert opt_one["cond_sched"] == opt_two["cond_sched"]
    for a, b in zip(opt_one["base"]["state"].values(), opt_two["base"]["state"].values(), strict=True):
        assert torch.allclose(a["exp_avg"], b["exp_avg"], rtol=1e-3, atol=1e-6)


@pytest.mark.slow
def test_uneven_batch_is_a_clear_error_under_torchrun(photos, tmp_path):
    res = _torchrun(2, ["--data", str(photos / "train"), "--out", str(tmp_path / "run"),
                        "--set", "tasks_per_batch=3", "--set", "steps=1", "--no-progress"],
                    tmp_path)
    assert res.returncode != 0
    assert "tasks_per_batch (3) must split evenly over 2 processes" in res.stderr
    assert not (tmp_path / "run" / "latest.pt").exists()


# ----------------------------------------------------------------------------- upscale


@pytest.fixture
def many_inputs(tmp_path, rng) -> Path:
    from PIL import Image as PILImage

    root = tmp_path / "in"
    root.mkdir()
    for i in range(5):
        h, w = int(rng.integers(20, 48)), int(rng.integers(20, 48))  # some span 2 tiles
        PILImage.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"p{i}.png")
    (root / "broken.png").write_bytes(b"not a png")
    return root


def test_upscale_over_several_devices_gives_the_single_device_outputs(tmp_path, many_inputs, capsys):
    from engine import build_model, save_model
    from engine.cli import main

    torch.manual_seed(3)
    model = save_model(build_model(TINY), tmp_path / "tiny.pt")
    common = ["upscale", str(many_inputs), "--model", str(model), "--support", "auto", "--tile", "32"]
    assert main([*common, "-o", str(tmp_path / "one"), "--device", "cpu"]) == 2
    one_err = capsys.readouterr().err
    # a device may repeat: two workers on the CPU stand in for two GPUs here
    assert main([*common, "-o", str(tmp_path / "two"), "--devices", "cpu, cpu"]) == 2
    two_err = capsys.readouterr().err
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert len(names) == 5 and names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        a = np.asarray(_open_rgb(tmp_path / "one" / name))
        b = np.asarray(_open_rgb(tmp_path / "two" / name))
        assert np.array_equal(a, b), name
    assert "upscaled 5 of 6" in two_err and "broken.png" in two_err
    assert one_err.count("broken.png") == two_err.count("broken.png") == 1


def _open_rgb(path: Path):
    from PIL import Image as PILImage

    return PILImage.open(path).convert("RGB")


@pytest.mark.parametrize(("spec", "message"), [
    ("all", "no CUDA GPU"),
    ("cpu,,cpu", "comma list"),
    ("cpu,gpu", "unknown device"),
    ("cuda:0,cuda:1", "no CUDA GPU"),
])
def test_bad_device_lists_are_usage_errors(tmp_path, many_inputs, capsys, spec, message):
    from engine.cli import main

    if torch.cuda.is_available():
        pytest.skip("these device lists are valid on a machine with GPUs")
    code = main(["upscale", str(many_inputs), "-o", str(tmp_path / "o"), "--method", "bicubic",
                 "--devices", spec])
    assert code == 2 and message in capsys.readouterr().err


def test_parse_devices_keeps_order_and_repeats():
    from engine.cli.upscale import parse_devices

    assert parse_devices("cpu,CPU") == ["cpu", "cpu"]
