"""A fine-tune's checkpoints and its parent's extra parts (issue 31 item 6): while the
ConditionNet stays bit-identical to the parent's, the parent's condition map (damage knobs) and
damage head are carried into every checkpoint; once it learns, they no longer fit and are left
out, and the checkpoint says why. CPU only, a tiny network, the real training loop."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from engine.checkpoint import load_model, read_checkpoint, save_model
from engine.condition_map import ConditionMap, attach_condition_map, condition_map_of
from engine.damage_head import DamageHead, attach_damage_head, damage_head_of
from engine.data import write_synthetic_photos
from engine.model import ModelConfig, build_model
from engine.training.config import TrainConfig
from engine.training.damage_fit import read_condition_map, read_damage_head
from engine.training.loop import train
from engine.training.run_folder import CARRIED_KEY

TINY = ModelConfig(scale=4, channels=8, blocks=1, support_size=3, cond_channels=8,
                   condition_input="highpass")


def tiny_cfg(parent: Path, **kw) -> TrainConfig:
    base = dict(
        model=TINY, steps=4, tasks_per_batch=2, lr_patch=8, lr_base=2e-3, lr_cond=2e-3,
        cond_every=1, checkpoint_every=2, log_every=2, val_every=100, num_workers=0,
        cache_crops_per_image=4, cache_crop_size=48, init_from=str(parent), threads=1,
    )
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("photos")
    write_synthetic_photos(root, 4, (96, 112), seed=2)
    return root


@pytest.fixture(scope="module")
def parent(tmp_path_factory) -> Path:
    """A conditioned model with a condition map and a damage head, as the shipped one has."""
    torch.manual_seed(0)
    model = build_model(TINY)
    cmap = ConditionMap(TINY.cond_channels)
    head = DamageHead(TINY.cond_channels)
    with torch.no_grad():
        cmap.out_mean.fill_(0.25)  # something to recognise it by
        head.out_mean.fill_(1.5)
    attach_condition_map(model, cmap)
    attach_damage_head(model, head)
    return save_model(model, tmp_path_factory.mktemp("parent") / "shipped.pt")


def _same_module(a: torch.nn.Module | None, b: torch.nn.Module | None) -> bool:
    assert a is not None and b is not None
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_a_fine_tune_holding_the_condition_net_keeps_the_parents_knobs(photos, parent,
                                                                       tmp_path) -> None:
    shipped = shutil.copy(parent, tmp_path / "shipped.pt")
    parent, original = Path(shipped), parent
    run = tmp_path / "run"
    # the ConditionNet is held for longer than the run, as the app's default fine-tune does
    last = train(tiny_cfg(parent, cond_freeze_steps=100), run, photos)
    for ckpt in (run / "checkpoints" / "step_0000002.pt", last, run / "latest.pt"):
        assert _same_module(read_condition_map(ckpt), read_condition_map(parent))
        assert _same_module(read_damage_head(ckpt), read_damage_head(parent))
        record = read_checkpoint(ckpt)[2][CARRIED_KEY]
        assert record["condition_net"] == "unchanged" and record["from"] == str(parent)
        assert sorted(record["carried"]) == ["condition_map", "damage_head"]
    # the knobs work on the fine-tuned model as they do on its parent
    model = load_model(last)
    cmap = condition_map_of(model)
    assert cmap is not None and damage_head_of(model) is not None
    assert torch.equal(cmap.condition(1.5, 10.0), condition_map_of(load_model(parent)).condition(1.5, 10.0))

    # resumed after the parent file was replaced by another model (a newer shipped one):
    # the run goes on carrying the knobs of the model it started from
    torch.manual_seed(7)
    save_model(build_model(TINY), parent)
    last = train(tiny_cfg(parent, cond_freeze_steps=100, steps=6), run, photos, resume=True)
    assert last.name == "step_0000006.pt"
    assert _same_module(read_condition_map(last), read_condition_map(original))
    assert read_checkpoint(last)[2][CARRIED_KEY]["condition_net"] == "unchanged"


def test_a_fine_tune_whose_condition_net_learns_drops_the_stale_map_and_says_why(
        photos, parent, tmp_path) -> None:
    run = tmp_path / "run"
    # held for the first 2 steps, learning from the third: the step-2 checkpoint keeps the
    # knobs, the step-4 one must not (its conditions no longer match the map's)
    last = train(tiny_cfg(parent, cond_freeze_steps=2), run, photos)
    early = run / "checkpoints" / "step_0000002.pt"
    assert read_condition_map(early) is not None
    assert read_checkpoint(early)[2][CARRIED_KEY]["condition_net"] == "unchanged"
    assert read_condition_map(last) is None and condition_map_of(load_model(last)) is None
    assert read_damage_head(last) is None  # not trained in this run: the parent's is stale too
    record = read_checkpoint(last)[2][CARRIED_KEY]
    assert record["condition_net"] == "changed" and record["carried"] == []
    assert sorted(record["dropped"]) == ["condition_map", "damage_head"]

    # a run that trains the damage head along keeps its own head, never the parent's map
    run2 = tmp_path / "run2"
    last = train(tiny_cfg(parent, cond_freeze_steps=0, damage_weight=1.0), run2, photos)
    assert read_condition_map(last) is None
    head = read_damage_head(last)
    assert head is not None and not _same_module(head, read_damage_head(parent))
    assert read_checkpoint(last)[2][CARRIED_KEY]["dropped"] == ["condition_map"]
