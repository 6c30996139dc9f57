"""scripts/promote_model.py, the gate a trained model passes before it becomes the default:
it judges the candidate as users would get it (fp16 weights), so the default's own fp32 copy
passes, and a model worse on the evaluation rows is refused."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from engine.checkpoint import save_model
from engine.data import write_synthetic_photos
from engine.model import ModelConfig, build_model

ROOT = Path(__file__).resolve().parents[2]


def _gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("promote_model", ROOT / "scripts" / "promote_model.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclass looks its module up while being built
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    root = tmp_path_factory.mktemp("gate")
    write_synthetic_photos(root / "val", 2, (96, 96), seed=3)
    torch.manual_seed(0)
    model = build_model(ModelConfig(channels=8, blocks=1, cond_channels=8, support_size=4,
                                    condition_input="highpass"))
    shipped = save_model(model, root / "shipped.pt", half=True)
    fp32 = save_model(model, root / "fp32.pt", half=False)
    with torch.no_grad():
        for p in model.sr_net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    worse = save_model(model, root / "worse.pt", half=False)
    return shipped, fp32, worse


def _run(gate: ModuleType, candidate: Path, shipped: Path, tmp: Path) -> int:
    return int(gate.main(["--candidate", str(candidate), "--shipped", str(shipped),
                          "--val", str(shipped.parent / "val"), "--crop", "64",
                          "--max-blockiness", "1000", "--report", str(tmp / "report.md")]))


def test_the_defaults_own_fp32_copy_passes(setup: tuple[Path, Path, Path], tmp_path: Path) -> None:
    shipped, fp32, _ = setup
    gate = _gate()
    assert _run(gate, fp32, shipped, tmp_path) == 0
    report = (tmp_path / "report.md").read_text()
    assert "WORSE" not in report and "+0.00 |" in report


def test_a_worse_model_is_refused(setup: tuple[Path, Path, Path], tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    shipped, _, worse = setup
    assert _run(_gate(), worse, shipped, tmp_path) == 1
    assert "refused: worse on" in capsys.readouterr().err
    assert "WORSE" in (tmp_path / "report.md").read_text()


def test_as_shipped_rounds_like_the_fp16_file(setup: tuple[Path, Path, Path]) -> None:
    from engine.checkpoint import load_model

    shipped, fp32, _ = setup
    rounded = _gate().as_shipped(load_model(fp32)).state_dict()
    for k, v in load_model(shipped).state_dict().items():
        torch.testing.assert_close(rounded[k], v, rtol=0, atol=0)
