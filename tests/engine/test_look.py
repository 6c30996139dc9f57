"""The Look (engine.look): network interpolation between the faithful and the crisp model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from engine import CheckpointError, ConfigError, build_model, save_model
from engine.condition_map import ConditionMap, attach_condition_map, condition_map_of
from engine.damage_head import DamageHead, attach_damage_head, damage_head_of
from engine.look import blend_states, check_look, load_look_model


@pytest.fixture
def two_models(tmp_path, seeded, tiny_config) -> tuple[Path, Path]:
    """A faithful model with a damage readout and a condition map, and a crisp model of the
    same network with other weights and a readout of its own (which must not be used)."""
    faithful = build_model(tiny_config)
    attach_damage_head(faithful, DamageHead(tiny_config.cond_channels, hidden=8))
    attach_condition_map(faithful, ConditionMap(tiny_config.cond_channels, hidden=8))
    crisp = build_model(tiny_config)
    with torch.no_grad():
        for p in crisp.parameters():
            p.add_(0.3 * torch.randn_like(p))
    attach_damage_head(crisp, DamageHead(tiny_config.cond_channels, hidden=4))
    return save_model(faithful, tmp_path / "faithful.pt"), save_model(crisp, tmp_path / "crisp.pt")


def _output(model, rng_seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(rng_seed)
    lr = torch.rand(1, 3, 12, 10, generator=g) * 255
    support = torch.rand(1, model.support_size, 3, 8, 8, generator=g) * 255
    with torch.no_grad():
        return model(lr, support)


def test_look_0_is_the_faithful_model_and_1_the_crisp_one(two_models):
    faithful_path, crisp_path = two_models
    from engine import load_model

    faithful = _output(load_model(faithful_path))
    crisp = _output(load_model(crisp_path))
    assert not torch.allclose(faithful, crisp)
    assert torch.equal(_output(load_look_model(faithful_path, 0.0, crisp_path)), faithful)
    assert torch.equal(_output(load_look_model(faithful_path, 1.0, crisp_path)), crisp)


def test_look_between_lies_between_and_moves_smoothly(two_models):
    faithful_path, crisp_path = two_models
    outs = [_output(load_look_model(faithful_path, t, crisp_path)) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    dist = [float((o - outs[0]).abs().mean()) for o in outs]
    assert dist[0] == 0.0
    assert dist[1] < dist[2] < dist[3] < dist[4]  # further from faithful as the look grows
    # the weights themselves are the midpoint at 0.5
    f = load_look_model(faithful_path, 0.0, crisp_path).state_dict()
    c = load_look_model(faithful_path, 1.0, crisp_path).state_dict()
    m = load_look_model(faithful_path, 0.5, crisp_path).state_dict()
    key = "sr_net.backbone.0.conv1.weight"
    assert torch.allclose(m[key], (f[key] + c[key]) / 2, atol=1e-6)


def test_the_faithful_readout_and_map_are_kept(two_models):
    faithful_path, crisp_path = two_models
    from engine import load_model

    faithful = load_model(faithful_path)
    blended = load_look_model(faithful_path, 0.7, crisp_path)
    head = damage_head_of(blended)
    assert head is not None and head.hidden == 8  # not the crisp file's (hidden 4)
    for k, v in damage_head_of(faithful).state_dict().items():
        assert torch.equal(head.state_dict()[k], v)
    assert condition_map_of(blended) is not None


def test_look_0_needs_no_crisp_model(two_models, tmp_path):
    faithful_path, _ = two_models
    model = load_look_model(faithful_path, 0.0, tmp_path / "absent.pt")
    assert model.scale == 4


def test_missing_crisp_model_is_a_one_line_error(two_models, tmp_path):
    faithful_path, _ = two_models
    with pytest.raises(ConfigError, match=r"no crisp model at .*absent\.pt: only look 0"):
        load_look_model(faithful_path, 0.5, tmp_path / "absent.pt")


def test_models_of_other_architectures_are_refused_naming_both(two_models, tmp_path, tiny_config):
    faithful_path, _ = two_models
    other = save_model(build_model(dataclasses.replace(tiny_config, blocks=3)), tmp_path / "deeper.pt")
    with pytest.raises(CheckpointError) as err:
        load_look_model(faithful_path, 0.5, other)
    message = str(err.value)
    assert "deeper.pt" in message and "faithful.pt" in message
    assert "blocks=3" in message and "blocks=2" in message
    assert "\n" not in message


@pytest.mark.parametrize("look", [-0.1, 1.5, float("nan"), "crisp"])
def test_look_outside_0_to_1_is_refused(look):
    with pytest.raises(ConfigError, match="look must be"):
        check_look(look)


def test_blend_states_refuses_other_names_and_shapes():
    a = {"w": torch.zeros(2, 2), "n": torch.tensor(3)}
    with pytest.raises(CheckpointError, match="not the same network"):
        blend_states(a, {"w": torch.ones(2, 2)}, 0.5)
    with pytest.raises(CheckpointError, match="shape"):
        blend_states(a, {"w": torch.ones(3, 2), "n": torch.tensor(4)}, 0.5)
    out = blend_states(a, {"w": torch.ones(2, 2), "n": torch.tensor(4)}, 0.25)
    assert torch.allclose(out["w"], torch.full((2, 2), 0.25))
    assert int(out["n"]) == 3  # integer tensors are the faithful model's


# ---- cmdsr upscale --look ----------------------------------------------------------------

def _upscale(capsys, tmp_path, photo, name, *extra) -> tuple[int, str, Path]:
    from engine.cli import main

    out = tmp_path / f"{name}.png"
    code = main(["upscale", str(photo), "-o", str(out), *[str(e) for e in extra]])
    return code, capsys.readouterr().err, out


@pytest.fixture
def photo(tmp_path, rng) -> Path:
    import numpy as np
    from PIL import Image as PILImage

    path = tmp_path / "photo.png"
    PILImage.fromarray(rng.integers(0, 256, (18, 22, 3), dtype=np.uint8)).save(path)
    return path


def test_cli_look_0_and_1_match_each_model_alone_and_between_differs(two_models, photo, tmp_path,
                                                                     capsys):
    from engine.io.imageio import read_image

    faithful_path, crisp_path = two_models
    runs = {
        "faithful": ("--model", faithful_path),
        "crisp": ("--model", crisp_path),
        "look0": ("--model", faithful_path, "--look", "0", "--crisp-model", crisp_path),
        "look1": ("--model", faithful_path, "--look", "1", "--crisp-model", crisp_path),
        "look05": ("--model", faithful_path, "--look", "0.5", "--crisp-model", crisp_path),
    }
    pixels = {}
    for name, extra in runs.items():
        code, err, out = _upscale(capsys, tmp_path, photo, name, *extra)
        assert code == 0, err
        pixels[name] = read_image(out).pixels
    assert not (pixels["faithful"] == pixels["crisp"]).all()
    assert (pixels["look0"] == pixels["faithful"]).all()
    assert (pixels["look1"] == pixels["crisp"]).all()
    assert not (pixels["look05"] == pixels["faithful"]).all()
    assert not (pixels["look05"] == pixels["crisp"]).all()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--look", "0.5"), "no crisp model at"),
        (("--look", "1.5"), "look must be from 0 (faithful) to 1 (crisp), got 1.5"),
        (("--look", "0.5", "--method", "bicubic"), "--look blends the faithful and the crisp"),
    ],
)
def test_cli_look_errors_are_one_line(two_models, photo, tmp_path, capsys, monkeypatch, extra,
                                      message):
    import engine.resources

    monkeypatch.setattr(engine.resources, "resources_dir", lambda: tmp_path / "no_resources")
    faithful_path, _ = two_models
    code, err, out = _upscale(capsys, tmp_path, photo, "out", "--model", faithful_path, *extra)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("cmdsr: error")]) == 1
    assert not out.exists()
