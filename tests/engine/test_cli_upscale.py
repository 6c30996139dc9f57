"""``cmdsr upscale``: files and folders, outputs and names, support options, exit codes 0/2/1
with the other images still processed and a summary at the end; finishing an interrupted
batch (``--skip-existing``, stale temp files of a killed run)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

from engine import ModelConfig, build_model, save_model
from engine.cli import main
from engine.io.fileio import atomic_write, remove_stale_temps
from engine.io.imageio import read_image


@pytest.fixture
def model_path(tmp_path, seeded, tiny_config) -> Path:
    return save_model(build_model(tiny_config), tmp_path / "tiny.pt")


@pytest.fixture
def inputs(tmp_path, rng) -> Path:
    root = tmp_path / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    PILImage.fromarray(rng.integers(0, 256, (18, 26, 3), dtype=np.uint8)).save(root / "a.png")
    PILImage.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(
        root / "sub" / "b.jpg", quality=90)
    PILImage.fromarray(rng.integers(0, 256, (12, 12, 4), dtype=np.uint8), "RGBA").save(
        root / "sub" / "deeper" / "c.webp", lossless=True)
    (root / "notes.txt").write_text("not an image, and not picked up")
    return root


def _run(capsys, *argv: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_folder_recursive_keeps_structure(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs, "-o", out, "--model", model_path, "--tile", "32")
    assert code == 0, err
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["a_x4.png", "sub/b_x4.jpg", "sub/deeper/c_x4.webp"]
    assert read_image(out / "a_x4.png").pixels.shape == (72, 104, 3)
    c = read_image(out / "sub" / "deeper" / "c_x4.webp")
    assert c.pixels.shape == (48, 48, 3) and c.alpha is not None
    assert "upscaled 3 of 3" in err


def test_files_format_suffix_quality_and_support_options(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "o"
    code, err = _run(capsys, "upscale", inputs / "a.png", inputs / "sub" / "b.jpg", "-o", out,
                     "--model", model_path, "--format", "tif", "--suffix", "_big",
                     "--support", "auto", "--device", "cpu")
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir()) == ["a_big.tif", "b_big.tif"]
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                     "--format", "jpg", "--quality", "40", "--support", "0,0,26,18", "--seed", "3")
    assert code == 0, err
    assert (out / "a_x4.jpg").exists()


def test_support_before_inputs_is_understood(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "o"
    code, err = _run(capsys, "upscale", "--support", "auto", inputs / "a.png", "-o", out,
                     "--model", model_path)
    assert code == 0, err
    assert (out / "a_x4.png").exists()


def test_single_file_to_named_output(tmp_path, inputs, model_path, capsys):
    target = tmp_path / "result.webp"
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", target, "--model", model_path)
    assert code == 0, err
    assert read_image(target).format == "webp"


def test_bad_inputs_exit_2_but_the_rest_is_done(tmp_path, inputs, model_path, capsys):
    (inputs / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs, tmp_path / "missing.jpg", "-o", out,
                     "--model", model_path)
    assert code == 2
    assert (out / "a_x4.png").exists() and (out / "sub" / "b_x4.jpg").exists()
    assert not (out / "broken_x4.png").exists()
    assert "2 problem(s)" in err and "missing.jpg: no such file" in err
    assert "broken.png" in err and "Traceback" not in err
    assert not list(out.rglob("*.tmp"))


def test_existing_outputs_need_overwrite(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a_x4.png").write_bytes(b"keep me")
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path)
    assert code == 2 and "already exists" in err and "--overwrite" in err
    assert (out / "a_x4.png").read_bytes() == b"keep me"
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                     "--overwrite")
    assert code == 0, err
    assert read_image(out / "a_x4.png").pixels.shape == (72, 104, 3)


def test_never_writes_over_its_input(tmp_path, inputs, model_path, capsys):
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", inputs, "--suffix", "",
                     "--model", model_path, "--overwrite")
    assert code == 2 and "write over this input" in err


def test_region_errors_are_per_image(tmp_path, inputs, model_path, capsys):
    # all three images are smaller than a patch: a region covering them is clipped to each
    code, err = _run(capsys, "upscale", inputs, "-o", tmp_path / "o", "--model", model_path,
                     "--support", "0,0,40,40")
    assert code == 0, err  # clipped to each small image, still a whole (padded) patch
    code, err = _run(capsys, "upscale", inputs, "-o", tmp_path / "o2", "--model", model_path,
                     "--support", "100,100,40,40")
    assert code == 2 and err.count("outside") == 3


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--support", "sideways"], "--support takes random, auto or X,Y,W,H"),
        (["--support", "1,2,3"], "X,Y,W,H"),
        (["--support", "auto", "1,2,30,30"], "not both"),
        (["--device", "gpu"], "unknown device"),
        (["--device", "cuda:7"], "cuda:7"),
        (["--tile", "5"], "tile must be"),
        (["--quality", "0"], "quality"),
        (["--model", "nowhere.pt"], "not found"),
    ],
)
def test_usage_errors_exit_2_with_one_line(tmp_path, inputs, model_path, capsys, argv, message):
    args = ["upscale", inputs / "a.png", "-o", tmp_path / "o"]
    if "--model" not in argv:
        args += ["--model", model_path]
    code, err = _run(capsys, *args, *argv)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("cmdsr: error")]) == 1


def test_missing_default_model_is_a_clear_error(tmp_path, inputs, capsys, monkeypatch):
    import engine.cli.upscale as cli_upscale

    monkeypatch.setattr(cli_upscale, "default_model_path", lambda: tmp_path / "none" / "m.pt")
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", tmp_path / "o")
    assert code == 2
    assert f"no default model shipped at {tmp_path / 'none' / 'm.pt'}; pass --model" in err


def test_bicubic_needs_no_model(tmp_path, inputs, capsys):
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", tmp_path / "o",
                     "--method", "bicubic")
    assert code == 0, err
    assert read_image(tmp_path / "o" / "a_x4.png").pixels.shape == (72, 104, 3)


def test_baseline_model(tmp_path, inputs, capsys, seeded):
    cfg = ModelConfig(scale=2, channels=8, blocks=1, support_size=3, cond_channels=8,
                      conditioning=False)
    path = save_model(build_model(cfg), tmp_path / "base.pt")
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", tmp_path / "o",
                     "--method", "baseline", "--model", path)
    assert code == 0, err
    assert (tmp_path / "o" / "a_x2.png").exists()


def test_internal_error_exits_1_and_other_images_go_on(tmp_path, inputs, model_path, capsys,
                                                       monkeypatch):
    import engine.cli.upscale as cli_upscale

    real = cli_upscale.upscale_image

    def flaky(image, *args, **kwargs):
        if image.source.name == "a.png":
            raise ValueError("something unexpected")
        return real(image, *args, **kwargs)

    monkeypatch.setattr(cli_upscale, "upscale_image", flaky)
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs, "-o", out, "--model", model_path)
    assert code == 1
    assert "internal error: ValueError: something unexpected" in err and "--debug" in err
    assert "Traceback" not in err
    assert (out / "sub" / "b_x4.jpg").exists()
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                     "--debug")
    assert code == 1 and "Traceback" in err


def test_16bit_input_gives_16bit_output_with_metadata(tmp_path, model_path, rng, capsys):
    import cv2

    from engine.io.imageio import Image, write_image

    exif = PILImage.Exif()
    exif[0x010F] = "TestCam"
    pixels = rng.uniform(0, 255, (14, 17, 3)).astype(np.float32)
    src = write_image(Image(pixels=pixels, bit_depth=16, exif=exif.tobytes(), icc=b"icc" * 50),
                      tmp_path / "deep.png")
    code, err = _run(capsys, "upscale", src, "-o", tmp_path / "o", "--model", model_path)
    assert code == 0, err
    out = tmp_path / "o" / "deep_x4.png"
    assert cv2.imread(str(out), cv2.IMREAD_UNCHANGED).dtype == np.uint16
    back = read_image(out)
    assert back.bit_depth == 16 and back.icc == b"icc" * 50 and back.exif is not None


# ----------------------------------------------------------------------------- interrupted batches


@pytest.fixture
def flat_inputs(tmp_path, rng) -> Path:
    root = tmp_path / "in"
    root.mkdir()
    for name in ("a", "b", "c"):
        PILImage.fromarray(rng.integers(0, 256, (12, 14, 3), dtype=np.uint8)).save(root / f"{name}.png")
    return root


def test_rerun_of_a_partly_done_batch(tmp_path, flat_inputs, model_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    # as if the earlier run was killed after a.png: its output is there, untouched since
    (out / "a_x4.png").write_bytes(b"finished earlier")
    code, err = _run(capsys, "upscale", flat_inputs, "-o", out, "--model", model_path)
    assert code == 2
    assert "a_x4.png: already exists" in err and "--skip-existing" in err

    assert PILImage.open(out / "b_x4.png").size == (56, 48)  # the others went on
    b_bytes = (out / "b_x4.png").read_bytes()
    (out / "c_x4.png").unlink()  # as if that run was killed before c

    code, err = _run(capsys, "upscale", flat_inputs, "-o", out, "--model", model_path, "--skip-existing")
    assert code == 0, err
    assert "upscaled 1 of 1 image(s)" in err and "(2 skipped: output exists)" in err
    assert (out / "a_x4.png").read_bytes() == b"finished earlier"
    assert (out / "b_x4.png").read_bytes() == b_bytes
    assert PILImage.open(out / "c_x4.png").size == (56, 48)


def test_skip_existing_and_overwrite_exclude_each_other(tmp_path, flat_inputs, model_path, capsys):
    code, err = _run(capsys, "upscale", flat_inputs, "-o", tmp_path / "o", "--model", model_path,
                     "--skip-existing", "--overwrite")
    assert code == 2
    assert "not allowed with argument --skip-existing" in err
    assert not (tmp_path / "o").exists()


def test_stale_temp_of_a_killed_run_is_removed(tmp_path, flat_inputs, model_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".a_x4.png.k1ll3d.tmp"
    stale.write_bytes(b"half a png")
    fresh = out / ".b_x4.png.wr1t1ng.tmp"  # another process may be writing this one now
    fresh.write_bytes(b"in progress")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    code, err = _run(capsys, "upscale", flat_inputs, "-o", out, "--model", model_path)
    assert code == 0, err
    assert not stale.exists()
    assert fresh.exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "a_x4.png", "b_x4.png", "c_x4.png"]


def test_remove_stale_temps_only_touches_its_own_target(tmp_path):
    target = tmp_path / "photo[1]_x4.png"
    atomic_write(target, lambda fh: fh.write(b"ok"), overwrite=False)
    mine = tmp_path / ".photo[1]_x4.png.abc.tmp"
    other = tmp_path / ".photo1_x4.png.abc.tmp"  # '[1]' is not a glob class here
    user = tmp_path / "photo[1]_x4.png.tmp"  # not hidden: not one of ours
    for p in (mine, other, user):
        p.write_bytes(b"x")
        os.utime(p, (time.time() - 3600,) * 2)
    assert remove_stale_temps(target) == [mine]
    assert other.exists() and user.exists() and target.read_bytes() == b"ok"
    assert remove_stale_temps(tmp_path / "missing" / "x.png") == []


def test_region_with_a_negative_corner_is_a_value_not_an_option(tmp_path, flat_inputs, model_path,
                                                                 capsys):
    out = tmp_path / "neg"
    code, err = _run(capsys, "upscale", flat_inputs / "a.png", "-o", out, "--model", model_path,
                     "--support", "-2,0,16,12")  # clipped to the whole 14x12 photo
    assert code == 0, err
    assert (out / "a_x4.png").is_file()
    code, err = _run(capsys, "upscale", flat_inputs / "a.png", "-o", out, "--model", model_path,
                     "--support", "-4")
    assert code == 2 and "got '-4'" in err


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*")
            if p.is_file()}


@pytest.mark.parametrize("how", ["same file", "folder, no suffix", "output folder is the input",
                                 "one output is another input"])
def test_writing_over_an_input_photo_is_refused_before_anything_is_written(
    tmp_path, inputs, model_path, capsys, how
):
    before = _snapshot(inputs)
    if how == "same file":
        argv = [inputs / "a.png", "-o", inputs / "a.png"]
    elif how == "folder, no suffix":
        argv = [inputs / "a.png", inputs / "sub" / "b.jpg", "-o", inputs, "--suffix", ""]
    elif how == "output folder is the input":
        argv = [inputs, "-o", inputs, "--suffix", ""]
    else:
        (inputs / "a_x4.png").write_bytes((inputs / "a.png").read_bytes())
        before = _snapshot(inputs)
        argv = [inputs / "sub" / "b.jpg", inputs / "a_x4.png", inputs / "a.png", "-o", inputs]
    code, err = _run(capsys, "upscale", *argv, "--model", model_path, "--overwrite")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "write over" in lines[0] and "Traceback" not in err
    assert ("a.png" in lines[0] or "a_x4.png" in lines[0] or str(inputs) in lines[0])
    assert _snapshot(inputs) == before  # nothing written, nothing replaced


@pytest.mark.parametrize(("option", "name", "shape"), [
    ([], "a_x4.png", (72, 104)),
    (["--scale", "2"], "a_x2.png", (36, 52)),
    (["--scale", "3"], "a_x3.png", (54, 78)),
    (["--width", "65"], "a_w65.png", (45, 65)),
    (["--height", "30"], "a_h30.png", (30, 43)),
])
def test_output_size_scale_width_height(tmp_path, inputs, model_path, capsys, option, name, shape):
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                     *option)
    assert code == 0, err
    assert read_image(out / name).pixels.shape[:2] == shape


def test_output_size_is_the_x4_result_area_averaged(tmp_path, inputs, model_path, capsys):
    import cv2

    out = tmp_path / "out"
    for option in ([], ["--scale", "2"]):
        code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                         "--seed", "1", *option)
        assert code == 0, err
    x4 = read_image(out / "a_x4.png").pixels
    x2 = read_image(out / "a_x2.png").pixels
    expected = cv2.resize(x4, (52, 36), interpolation=cv2.INTER_AREA)
    assert np.abs(x2 - expected).max() <= 1.0  # rounding of the 8-bit files only


def test_output_size_larger_than_the_model_can_give_is_refused(tmp_path, inputs, model_path,
                                                                capsys):
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                     "--width", "500")
    assert code == 2 and "a.png" in err and "more than the model's x4" in err
    assert not (out / "a_w500.png").exists()
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--scale", "5",
                     "--model", model_path)
    assert code == 2 and "Traceback" not in err


# ----------------------------------------------------------------------------- damage knobs


def _hf(path: Path) -> float:
    y = read_image(path).pixels.astype(np.float32).mean(axis=2)
    return float(np.abs(np.diff(y, axis=0)).mean() + np.abs(np.diff(y, axis=1)).mean())


def test_damage_knobs_steer_the_shipped_model(tmp_path, rng, capsys):
    """--blur/--noise with the shipped model (it carries a condition map): more noise gives a
    smoother result, more blur a sharper one, and the numbers are the ones used."""
    base = np.clip(rng.normal(128, 40, (40, 40, 3)), 0, 255).astype(np.uint8)
    src = tmp_path / "photo.png"
    PILImage.fromarray(base).save(src)
    outs = {}
    for name, blur, noise in (("calm", "1.0", "0"), ("noisy", "1.0", "40"), ("soft", "3.5", "0")):
        out = tmp_path / name
        code, err = _run(capsys, "upscale", src, "-o", out, "--blur", blur, "--noise", noise, "-q")
        assert code == 0, err
        outs[name] = _hf(out / "photo_x4.png")
    assert outs["noisy"] < outs["calm"] < outs["soft"]


def test_damage_knobs_outside_the_trained_range_are_refused_with_the_range(tmp_path, inputs, capsys):
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--blur", "9", "--noise", "0")
    assert code == 2
    assert "blur sigma 9 is outside what this model was trained on (0.4 to 4)" in err
    assert not out.exists()
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--noise", "-3")
    assert code == 2 and "noise sigma -3 is outside" in err


def test_damage_knobs_need_a_model_with_a_condition_map(tmp_path, inputs, model_path, capsys):
    out = tmp_path / "out"
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--model", model_path,
                     "--blur", "1", "--noise", "0")
    assert code == 2 and "has no damage knobs" in err and str(model_path) in err
    code, err = _run(capsys, "upscale", inputs / "a.png", "-o", out, "--method", "bicubic",
                     "--blur", "1")
    assert code == 2 and "--method cmdsr" in err
    assert not out.exists()
