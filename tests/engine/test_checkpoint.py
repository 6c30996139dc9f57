"""Model files: our format, the authors' plain state_dict, and every refusal."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from engine import (
    CheckpointError,
    ModelConfig,
    build_model,
    load_model,
    read_checkpoint,
    save_model,
)
from tests.engine.authors_reference import reference_forward


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_authors_state_dict_round_trip_infers_the_architecture(tmp_path, seeded, scale):
    cfg = ModelConfig(scale=scale, channels=16, blocks=3, support_size=5, cond_channels=32)
    model = build_model(cfg)
    path = tmp_path / "CMDSR_model.pth"
    torch.save(model.state_dict(), path)  # the authors' release: a bare state_dict
    loaded = load_model(path)
    assert loaded.config.scale == scale
    assert loaded.config.support_size == 5
    assert loaded.config.blocks == 3 and loaded.config.channels == 16
    assert not loaded.training
    lr = torch.rand(1, 3, 7, 9) * 255
    support = torch.rand(1, 5, 3, 10, 10) * 255
    with torch.no_grad():
        a, b = loaded(lr, support), reference_forward(model.state_dict(), lr, support)
    assert float((a - b).abs().max() / (b.max() - b.min())) < 1e-4


def test_paper_size_authors_file_loads(tmp_path, seeded):
    path = tmp_path / "CMDSR_model.pth"
    torch.save(build_model(ModelConfig()).state_dict(), path)
    cfg, state, meta = read_checkpoint(path)
    assert cfg == ModelConfig()
    assert len(state) == 96
    assert meta["format"] == "authors-state-dict"


def test_own_format_round_trip_with_fp16_storage(tmp_path, seeded, tiny_config):
    model = build_model(tiny_config)
    path = save_model(model, tmp_path / "m.pt", step=42, half=True, extra={"note": "x"})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "cmdsr-studio-checkpoint" and raw["step"] == 42
    assert raw["params"]["sr_net.input_conv.weight"].dtype == torch.float16
    loaded = load_model(path)
    assert loaded.config == tiny_config
    w = loaded.state_dict()["sr_net.input_conv.weight"]
    assert w.dtype == torch.float32
    assert torch.allclose(w, model.state_dict()["sr_net.input_conv.weight"], atol=1e-2)


def test_conditioning_off_checkpoint(tmp_path, seeded):
    cfg = ModelConfig(channels=8, blocks=2, conditioning=False)
    path = tmp_path / "base.pth"
    torch.save(build_model(cfg).state_dict(), path)
    assert load_model(path).config.conditioning is False


def test_bare_basenet_with_unused_modulations_loads(tmp_path, seeded):
    # the authors' pretrained BaseNet: sr_net's own keys, no prefix, modulations included
    model = build_model(ModelConfig(channels=8, blocks=2, cond_channels=8, support_size=2))
    bare = {k[len("sr_net."):]: v for k, v in model.state_dict().items() if k.startswith("sr_net.")}
    path = tmp_path / "basenet.pth"
    torch.save(bare, path)
    assert load_model(path).config.conditioning is False


def _cases(tmp_path: Path, tiny_config: ModelConfig) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.pt"
    save_model(build_model(tiny_config), good)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    text = tmp_path / "notes.pth"
    text.write_text("these are not weights\n")
    other = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7), "fc.weight": torch.zeros(10, 512)}, other)
    shapes = tmp_path / "shapes.pth"
    sd = build_model(tiny_config).state_dict()
    sd["sr_net.backbone.0.conv1.weight"] = torch.zeros(8, 8, 5, 5)
    torch.save(sd, shapes)
    notdict = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], notdict)
    return {
        "truncated": (truncated, "truncated or corrupt"),
        "empty": (empty, "empty"),
        "text": (text, "not a PyTorch model file"),
        "other network": (other, "not a CMDSR network"),
        "wrong shapes": (shapes, "shape"),
        "not a dict": (notdict, "not a model's weights"),
        "missing": (tmp_path / "nope.pth", "not found"),
        "folder": (tmp_path, "folder"),
    }


@pytest.mark.parametrize(
    "case",
    ["truncated", "empty", "text", "other network", "wrong shapes", "not a dict", "missing", "folder"],
)
def test_bad_files_raise_checkpoint_error_naming_the_file(tmp_path, tiny_config, case):
    path, message = _cases(tmp_path, tiny_config)[case]
    with pytest.raises(CheckpointError, match=message) as info:
        load_model(path)
    assert str(path) in str(info.value)


class _Payload:
    def __reduce__(self):
        import os

        return (os.system, ("touch " + str(_Payload.marker),))


def test_pickle_with_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    _Payload.marker = marker
    path = tmp_path / "evil.pth"
    with zipfile.ZipFile(path, "w") as zf:  # torch's zip layout, with a malicious data.pkl
        zf.writestr("evil/data.pkl", pickle.dumps({"x": _Payload()}, protocol=2))
        zf.writestr("evil/version", "3\n")
    with pytest.raises(CheckpointError, match="refused|not a PyTorch") as info:
        load_model(path)
    assert str(path) in str(info.value)
    assert not marker.exists()
    legacy = tmp_path / "legacy.pth"
    legacy.write_bytes(pickle.dumps({"x": _Payload()}, protocol=2))
    with pytest.raises(CheckpointError):
        load_model(legacy)
    assert not marker.exists()


def test_saved_files_get_the_users_usual_permissions(tmp_path, tiny_config):
    import os

    old = os.umask(0o022)
    try:
        path = save_model(build_model(tiny_config), tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == 0o644
    assert not list(tmp_path.glob(".*.tmp"))
