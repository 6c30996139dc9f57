"""Hostile model files: empty, truncated, not a network, the wrong network, wrong shapes, a
pickle that tries to run code. Each is refused with a CheckpointError naming the file, by the
engine, the CLI (exit 2, one line, no traceback) and the GUI (a dialog; the app keeps working).
"""

from __future__ import annotations

import builtins
import io
import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from engine import CheckpointError, load_model
from engine.checkpoint import checkpoint_dict
from engine.cli import main
from tests.reliability.conftest import run_cli, save_tiny, tiny_config, write_photo


class _RunsCode:
    """Unpickling this runs ``exec(code)``: what a booby-trapped model file does."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (builtins.exec, (self.code,))


def _touch_code(marker: Path) -> str:
    return f"import pathlib; pathlib.Path({str(marker)!r}).write_text('pwned')"


def make_hostile_models(folder: Path, marker: Path) -> dict[str, Path]:
    """name -> file; every model file a user might wrongly (or be tricked to) pick."""
    folder.mkdir(parents=True, exist_ok=True)
    good = save_tiny(folder / "good.pt")
    data = good.read_bytes()
    files: dict[str, Path] = {}

    def put(name: str, content: bytes) -> None:
        (folder / name).write_bytes(content)
        files[name] = folder / name

    put("zero_bytes.pth", b"")
    put("truncated_half.pt", data[: len(data) // 2])
    put("truncated_100_bytes.pt", data[:100])
    put("no_zip_directory.pt", data[:-22])  # the zip's end record cut off
    put("notes.pth", b"These are my notes about super-resolution.\n" * 10)
    write_photo(folder / "photo.jpg")
    put("photo_renamed.pth", (folder / "photo.jpg").read_bytes())
    put("random_bytes.pt", bytes((i * 7919) % 256 for i in range(4096)))
    zbuf = io.BytesIO()
    with zipfile.ZipFile(zbuf, "w") as zf:
        zf.writestr("readme.txt", "a zip, but not a PyTorch file")
    put("plain_zip.pt", zbuf.getvalue())

    def save(name: str, obj: object) -> None:
        torch.save(obj, folder / name)
        files[name] = folder / name

    other = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3), torch.nn.ReLU(), torch.nn.Linear(16, 10))
    save("wrong_network.pth", other.state_dict())
    save("a_list.pth", [1, 2, 3])
    model_state = checkpoint_dict(__import__("engine").build_model(tiny_config()))
    bad_shape = {k: v.clone() for k, v in model_state["params"].items()}
    bad_shape["sr_net.backbone.0.conv1.weight"] = torch.zeros(8, 8, 5, 5)
    save("wrong_shapes.pt", {**model_state, "params": bad_shape})
    save("config_disagrees.pt", {**model_state, "config": {**model_state["config"], "channels": 16}})
    save("authors_wrong_support.pth", {k: (torch.zeros(8, 61, 3, 3) if k.endswith("condition.0.weight")
                                          else v) for k, v in model_state["params"].items()})
    save("text_instead_of_tensor.pt", {**model_state, "params": {**model_state["params"],
                                                                 "sr_net.input_conv.weight": "hi"}})
    save("newer_format.pt", {**model_state, "version": 99})
    # The dangerous ones: loading them with a plain unpickler runs code.
    save("runs_code.pth", {"params": _RunsCode(_touch_code(marker))})
    put("runs_code_legacy.pth", pickle.dumps(_RunsCode(_touch_code(marker)), protocol=2))
    (folder / "a_folder.pth").mkdir()
    files["a_folder.pth"] = folder / "a_folder.pth"
    return files


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    folder = tmp_path_factory.mktemp("hostile_models")
    marker = folder / "CODE_RAN.txt"
    return make_hostile_models(folder / "models", marker), marker


NAMES = ["zero_bytes.pth", "truncated_half.pt", "truncated_100_bytes.pt", "no_zip_directory.pt",
         "notes.pth", "photo_renamed.pth", "random_bytes.pt", "plain_zip.pt", "wrong_network.pth",
         "a_list.pth", "wrong_shapes.pt", "config_disagrees.pt", "authors_wrong_support.pth",
         "text_instead_of_tensor.pt", "newer_format.pt", "runs_code.pth", "runs_code_legacy.pth",
         "a_folder.pth"]


def test_the_booby_trap_is_real(tmp_path: Path) -> None:
    """Control: the payload does run code under a plain unpickler, so the tests below that
    find no marker file prove something."""
    marker = tmp_path / "control.txt"
    path = tmp_path / "trap.pth"
    torch.save({"params": _RunsCode(_touch_code(marker))}, path)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "pwned"


@pytest.mark.parametrize("name", NAMES)
def test_engine_refuses_with_a_checkpoint_error(hostile, name: str) -> None:
    files, marker = hostile
    with pytest.raises(CheckpointError) as info:
        load_model(files[name])
    message = str(info.value)
    assert name in message and "\n" not in message
    assert not marker.exists(), "a model file ran code"
    if name.startswith("runs_code"):
        assert "refused" in message and "only tensors" in message


@pytest.mark.parametrize("name", NAMES)
def test_cli_says_one_line_and_exits_2(hostile, name: str, tmp_path: Path, capsys) -> None:
    files, marker = hostile
    photo = write_photo(tmp_path / "p.png")
    code = main(["upscale", str(photo), "-o", str(tmp_path / "out"), "--model", str(files[name]),
                 "--quiet"])
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("cmdsr: error: "), captured.err
    assert name in lines[0] and "Traceback" not in captured.err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not marker.exists(), "a model file ran code"


def test_cli_in_a_fresh_process_refuses_the_booby_trap(hostile, tmp_path: Path) -> None:
    files, marker = hostile
    photo = write_photo(tmp_path / "p.png")
    proc = run_cli(["upscale", str(photo), "-o", str(tmp_path / "out"), "--model",
                    str(files["runs_code.pth"])])
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0, proc.stderr
    assert "refused to load" in proc.stderr and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_gui_shows_an_error_for_each_and_keeps_working(qtbot, app_window, hostile, tmp_path: Path) -> None:
    files, marker = hostile
    window = app_window
    for name in ("zero_bytes.pth", "truncated_half.pt", "notes.pth", "wrong_network.pth",
                 "wrong_shapes.pt", "runs_code.pth", "runs_code_legacy.pth", "a_folder.pth"):
        with qtbot.waitSignal(window.errorShown, timeout=15000) as blocker:
            window.choose_model(str(files[name]))
        title, message = window.last_error
        assert title == "Cannot use this model"
        assert name in blocker.args[0] and "Traceback" not in message
        assert window.error_dialog is not None and window.error_dialog.isVisible()
        assert window.settings_panel.model_path == ""  # still the shipped default
        assert not marker.exists()
    # The app still upscales with the model it had.
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([write_photo(tmp_path / "p.png", 36, 44)])
    with qtbot.waitSignal(window.upscaleFinished, timeout=60000,
                          check_params_cb=lambda method: method == "cmdsr"):
        window.run_upscale()
    assert window.compare.result("cmdsr").width() == 44 * 4
