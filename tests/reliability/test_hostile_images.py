"""Hostile photos: a mutation fuzzer over every format we read, headers that declare enormous
images, and broken files fed to the CLI and the GUI.

The fuzzer runs in a child process (scripts/fuzz_images.py) with a watchdog: a native crash
(segfault, abort) or a case that stops making progress is reported with the file that
reproduces it, instead of taking pytest down or hanging CI.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.reliability.conftest import ROOT, child_env, run_cli, write_photo

FUZZ_CASES = 4000
FUZZ_BUDGET_S = 75  # a loaded CI machine stops early; the cases done still count
HANG_S = 45  # one case without progress this long is a hang (the slowest legit case: ~12 s)


def _run_fuzzer(workdir: Path, *extra: str) -> dict:
    cmd = [sys.executable, str(ROOT / "scripts" / "fuzz_images.py"), "--cases", str(FUZZ_CASES),
           "--seed", "0", "--workdir", str(workdir), "--budget", str(FUZZ_BUDGET_S), *extra]
    log = (workdir.parent / "fuzz_stderr.txt").open("wb")  # decoders chatter on stderr
    proc = subprocess.Popen(cmd, cwd=ROOT, env=child_env(), stdout=subprocess.PIPE, stderr=log)
    current = workdir / "current.json"
    last_change, last_mtime = time.monotonic(), 0.0
    while proc.poll() is None:
        time.sleep(0.5)
        mtime = current.stat().st_mtime if current.exists() else 0.0
        if mtime != last_mtime:
            last_mtime, last_change = mtime, time.monotonic()
        elif time.monotonic() - last_change > HANG_S:
            proc.kill()
            proc.wait()
            pytest.fail(f"image decoding hung for over {HANG_S} s on the case "
                        f"{current.read_text()} (file {workdir}/current.*)")
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode < 0:
        case = current.read_text() if current.exists() else "(unknown)"
        pytest.fail(f"the decoder process died with signal {-proc.returncode} on case {case}; "
                    f"reproduce with: python scripts/fuzz_images.py --replay {workdir}/current.*")
    summary = json.loads((workdir / "summary.json").read_text())
    print(out.strip())
    return summary


def test_mutated_images_decode_or_raise_image_read_error(tmp_path: Path) -> None:
    """Thousands of flipped, truncated and spliced PNG/JPEG/WebP/TIFF/BMP files through
    engine.read_image (the CLI's and the GUI's path) and the GUI's thumbnail reader."""
    summary = _run_fuzzer(tmp_path / "fuzz", "--thumbnails")
    findings = summary["findings"]
    assert not findings, "\n\n".join(
        f"case {f['index']} ({f['source']}, {f['mutation']}) -> {f['error']}\n"
        f"file: {f['file']}\n{f.get('traceback', '')}" for f in findings[:5])
    assert summary["cases"] >= 1000, f"only {summary['cases']} cases ran in {FUZZ_BUDGET_S} s"
    outcomes: dict[str, int] = {}
    for per_seed in summary["counts"].values():
        for outcome, n in per_seed.items():
            outcomes[outcome] = outcomes.get(outcome, 0) + n
    assert set(outcomes) <= {"ok", "ImageReadError"}
    # The mutations must reach the decoders, not only the signature checks: many mutated files
    # still decode (about a quarter with seed 0), many do not.
    assert outcomes["ok"] > 0.1 * summary["cases"] and outcomes["ImageReadError"] > 0.3 * summary["cases"]
    for name, per_seed in summary["counts"].items():
        assert per_seed.get("ImageReadError", 0) > 0, name
    print(f"fuzz: {summary['cases']} cases in {summary['seconds']} s, {outcomes}; "
          f"slow cases: {summary['slow_cases']}")


def test_huge_declared_dimensions_are_refused_before_allocation(tmp_path: Path) -> None:
    """A 83-byte PNG claiming 100000x100000 (and JPEG/WebP/TIFF/BMP cousins) is refused at
    once, by the engine and by the thumbnail reader, without the peak memory moving."""
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "reliability" / "huge_headers.py"),
                           str(tmp_path)], cwd=ROOT, env=child_env(), capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == 8
    for row in rows:
        print(row)
        assert row["outcome"] == "ImageReadError", row
        assert row["file"] in row["message"]
        assert row["thumbnail"] == "null", row
        assert row["peak_rise_mb"] < 50, row  # one 100000x100000 RGB buffer would be 30 GB
        assert row["read_s"] < 2.0 and row["thumbnail_s"] < 2.0, row
    over = next(r for r in rows if r["file"] == "png_9000x9000.png")
    assert "81 megapixels" in over["message"] and "limit of 80" in over["message"]


def _broken_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    good = write_photo(folder / "good.png", 40, 48)
    data = good.read_bytes()
    files = {
        "empty.png": b"",
        "text.jpg": b"holiday notes, not a photo\n" * 20,
        "truncated.png": data[: len(data) // 2],
        "header_only.png": data[:33],
        "garbage.tif": bytes(range(256)) * 8,
    }
    out = {"good.png": good}
    for name, content in files.items():
        (folder / name).write_bytes(content)
        out[name] = folder / name
    return out


def test_cli_batch_lists_each_broken_file_and_finishes_the_rest(tmp_path: Path, tiny_model: Path) -> None:
    files = _broken_files(tmp_path / "in")
    out = tmp_path / "out"
    proc = run_cli(["upscale", str(tmp_path / "in"), "-o", str(out), "--model", str(tiny_model),
                    "--quiet"])
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    for name in files:
        if name != "good.png":
            assert name in proc.stderr, name
    assert "5 problem(s)" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["good_x4.png"]


@pytest.mark.usefixtures("qapp")
def test_gui_refuses_a_bomb_and_a_broken_file_and_keeps_working(qtbot, tmp_path: Path, app_window) -> None:
    from tests.reliability.huge_headers import png

    window = app_window
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png(100_000, 100_000))
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0" + b"\x00" * 40)
    good = write_photo(tmp_path / "good.png", 40, 56)
    for bad in (bomb, broken):
        with qtbot.waitSignal(window.errorShown, timeout=15000) as blocker:
            window.open_paths([bad])
        assert bad.name in blocker.args[0]
        assert window.last_error[0] == "Cannot open image"
        assert "Traceback" not in window.last_error[1]
    with qtbot.waitSignal(window.imageLoaded, timeout=15000):
        window.open_paths([good])
    assert window.photos.image.pixels.shape == (40, 56, 3)
    qtbot.waitUntil(lambda: not window.thumbs.busy, timeout=15000)
