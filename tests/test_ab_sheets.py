"""benchmarks/ab_sheets.py: blind sheets (input, then two results in random order) with the key
kept apart, and the tally of the judges' answers."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ab():
    spec = importlib.util.spec_from_file_location("ab_sheets", ROOT / "benchmarks" / "ab_sheets.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ab_sheets"] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def folders(tmp_path, rng) -> dict[str, Path]:
    """Two LR photos and two methods' x4 results: 'dark' is all 40s, 'bright' all 220s, so a
    sheet's panels say which method is where."""
    lr, dark, bright = tmp_path / "lr", tmp_path / "dark", tmp_path / "bright"
    for d in (lr, dark, bright):
        d.mkdir()
    for i, (h, w) in enumerate([(40, 56), (48, 40)]):
        PILImage.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(lr / f"p{i}.png")
        PILImage.fromarray(np.full((h * 4, w * 4, 3), 40, np.uint8)).save(dark / f"p{i}_x4.png")
        PILImage.fromarray(np.full((h * 4, w * 4, 3), 220, np.uint8)).save(bright / f"p{i}.png")
    return {"lr": lr, "dark": dark, "bright": bright}


def _make(ab, folders, tmp_path, seed=0) -> tuple[Path, Path, int]:
    sheets, key = tmp_path / "sheets", tmp_path / "secret" / "key.json"
    n = ab.make_sheets(folders["lr"], {"dark": folders["dark"], "bright": folders["bright"]},
                       sheets, key, crops_per_photo=2, crop=16, seed=seed)
    return sheets, key, n


def _panel_value(sheet: np.ndarray, index: int, crop_px: int, ab) -> int:
    """The grey level in the middle of panel ``index`` (0 input, 1 A, 2 B)."""
    x = index * (crop_px + ab.GAP) + crop_px // 2
    return int(sheet[ab.LABEL_H + crop_px // 2, x, 0])


def test_sheets_show_the_input_then_both_results_in_the_order_the_key_says(ab, folders, tmp_path):
    sheets, key, n = _make(ab, folders, tmp_path)
    assert n == 4
    files = sorted(sheets.glob("*.png"))
    assert [f.name for f in files] == [f"sheet_{i:03d}.png" for i in range(1, 5)]
    assert not list(sheets.glob("*.json"))  # the judges' folder holds no key
    data = json.loads(key.read_text())
    orders = set()
    for f in files:
        sheet = np.asarray(PILImage.open(f).convert("RGB"))
        crop_px = 16 * 4
        assert sheet.shape == (crop_px + ab.LABEL_H, 3 * crop_px + 2 * ab.GAP, 3)
        entry = data["sheets"][f.name]
        want = {"dark": 40, "bright": 220}
        assert _panel_value(sheet, 1, crop_px, ab) == want[entry["A"]]
        assert _panel_value(sheet, 2, crop_px, ab) == want[entry["B"]]
        # the input panel is the LR crop, nearest x4: blocks of 4x4 equal pixels
        x, y, size, _ = entry["crop"]
        lr = np.asarray(PILImage.open(folders["lr"] / entry["photo"]).convert("RGB"))
        inp = sheet[ab.LABEL_H:, :crop_px]
        assert np.array_equal(inp[::4, ::4], lr[y:y + size, x:x + size])
        assert np.array_equal(inp[3::4, 3::4], lr[y:y + size, x:x + size])
        orders.add(entry["A"])
    assert orders == {"dark", "bright"}  # the order is drawn, not fixed


def test_the_key_may_not_sit_with_the_sheets(ab, folders, tmp_path):
    with pytest.raises(ab.SheetError, match="outside the sheets folder"):
        ab.make_sheets(folders["lr"], {"dark": folders["dark"], "bright": folders["bright"]},
                       tmp_path / "sheets", tmp_path / "sheets" / "key.json")


def test_a_result_of_the_wrong_size_is_named(ab, folders, tmp_path):
    PILImage.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folders["bright"] / "p1.png")
    with pytest.raises(ab.SheetError, match=r"p1\.png: is 10x10 px, expected the x4 result"):
        _make(ab, folders, tmp_path)


def test_tally_counts_preferences_through_the_key(ab, folders, tmp_path, capsys):
    sheets, key, _ = _make(ab, folders, tmp_path)
    entries = json.loads(key.read_text())["sheets"]
    names = sorted(entries)
    # judge 1 always picks the bright panel; judge 2 the dark one on the first sheet, then ties
    one = [("A" if entries[s]["A"] == "bright" else "B") for s in names]
    two = [("A" if entries[names[0]]["A"] == "dark" else "B")] + ["="] * 3
    (tmp_path / "j1.txt").write_text("\n".join(one) + "\n")
    lines = [f"{s} {a}" for s, a in zip(names, two, strict=True)]
    (tmp_path / "j2.txt").write_text("# judge two\n" + "\n".join(lines))
    wins, total = ab.tally(key, [tmp_path / "j1.txt", tmp_path / "j2.txt"])
    assert total == 8
    assert wins["bright"] == 4 and wins["dark"] == 1 and wins["="] == 3
    assert ab.main(["tally", "--key", str(key), "--answers", str(tmp_path / "j1.txt")]) == 0
    out = capsys.readouterr().out
    assert "bright preferred: 4 (100%)" in out and "dark preferred: 0 (0%)" in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A\nB\n", "no answer for 2 sheet(s)"),
        ("A\nB\nC\nA\n", "line 3: answer must be A, B or =, got 'C'"),
        ("A\nB\nA\nB\nA\n", "5 answers for 4 sheets"),
        ("sheet_009.png A\n", "no sheet named sheet_009.png"),
    ],
)
def test_bad_answers_are_one_line_errors(ab, folders, tmp_path, capsys, text, message):
    _, key, _ = _make(ab, folders, tmp_path)
    answers = tmp_path / "bad.txt"
    answers.write_text(text)
    assert ab.main(["tally", "--key", str(key), "--answers", str(answers)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(answers) in err
    assert len(err.strip().splitlines()) == 1
