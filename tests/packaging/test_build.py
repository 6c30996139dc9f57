"""The real build, end to end (slow: several minutes on a 2-core machine).

Builds the PyInstaller bundle and the .deb with build_spec/build.py exactly as a release does
(only a faster compression level), runs the frozen `--selftest`, unpacks the .deb into a
temporary root with `dpkg -x` and runs the installed launcher's `--selftest`. A stand-in model
is used only where the checkout has no trained default model yet.
"""

from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APP = "cmdsr-studio"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux bundle and .deb"),
    pytest.mark.timeout(1500),
]


def _clean_env(home: Path) -> dict[str, str]:
    """No display, no developer Python settings, a throwaway home: like a fresh user account."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "QT_", "VIRTUAL_ENV", "DISPLAY", "WAYLAND"))}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"),
               XDG_CONFIG_HOME=str(home / "config"), XDG_CACHE_HOME=str(home / "cache"))
    return env


def _selftest(program: Path, home: Path) -> str:
    started = time.perf_counter()
    result = subprocess.run([str(program), "--selftest"], env=_clean_env(home), cwd=home,
                            capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    print(f"{program} --selftest: exit {result.returncode} in "
          f"{time.perf_counter() - started:.1f} s\n{output}")
    assert result.returncode == 0, output[-3000:]
    assert "self-test passed" in result.stdout
    for check in ("default model", "sample photo", "upscale", "training", "qt"):
        assert f"PASS {check}:" in result.stdout
    return result.stdout


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    for tool in ("objdump", "dpkg-deb"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run scripts/install_system_deps.sh")
    base = tmp_path_factory.mktemp("packaging")
    dist, work = base / "dist", base / "work"
    started = time.perf_counter()
    # The build environment lives in build/venv and is reused while pyproject.toml is unchanged.
    result = subprocess.run(
        [sys.executable, str(ROOT / "build_spec" / "build.py"), "--placeholder-resources",
         "--deb", "--compression", "gzip", "--level", "1",
         "--dist", str(dist), "--work", str(work)],
        cwd=ROOT, capture_output=True, text=True, timeout=1200,
        env={k: v for k, v in os.environ.items() if not k.startswith(("PYTHONPATH", "VIRTUAL_ENV"))},
    )
    print(result.stdout[-4000:], result.stderr[-4000:])
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    print(f"build took {time.perf_counter() - started:.0f} s")
    assert "bundle size:" in result.stdout and "build time:" in result.stdout
    (deb,) = dist.glob(f"{APP}_*.deb")
    return {"bundle": dist / APP, "deb": deb, "home": base / "home"}


def test_frozen_bundle_selftest(built: dict[str, Path]) -> None:
    bundle = built["bundle"]
    program = bundle / APP
    assert os.access(program, os.X_OK)
    internal = bundle / "_internal"
    assert (internal / "resources" / "models" / "cmdsr_x4.pt").is_file()
    assert (internal / "resources" / "samples" / "sample.png").is_file()
    plugins = next(internal.rglob("plugins/platforms"))
    names = {p.name for p in plugins.iterdir()}
    assert {"libqxcb.so", "libqoffscreen.so"} <= names
    assert not {"libqeglfs.so", "libqvnc.so", "libqlinuxfb.so"} & names
    assert next(internal.rglob("plugins/imageformats/libqjpeg.so"), None) is not None
    # What the spec leaves out stays out.
    for absent in ("pytest", "_pytest", "mypy", "torch/testing/_internal/opinfo", "torch/bin",
                   "torch/include", "networkx"):
        assert not (internal / absent).exists(), absent
    assert not list(internal.rglob("libtorchbind_test.so"))
    # Readable by every user once installed (model files are written owner-only).
    for path in [program, *internal.rglob("*.pt")]:
        assert path.stat().st_mode & 0o444 == 0o444, path
    built["home"].mkdir(exist_ok=True)
    out = _selftest(program, built["home"])
    assert "frozen bundle" in out


def test_deb_installs_and_launcher_selftest(built: dict[str, Path], tmp_path: Path) -> None:
    deb = built["deb"]
    fields = {}
    for line in subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                               check=True).stdout.splitlines():
        if ":" in line and not line.startswith(" "):
            key, value = line.split(":", 1)
            fields[key] = value.strip()
    assert fields["Package"] == APP
    assert "libxcb-cursor0" in fields["Depends"] and "libgl1" in fields["Depends"]
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout
    assert "root/root" in listing and "./opt/cmdsr-studio/cmdsr-studio" in listing

    root = tmp_path / "root"
    subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    launcher = root / "usr" / "bin" / APP
    assert os.access(launcher, os.X_OK)
    assert (root / "opt" / APP / APP).is_file()
    entry = configparser.ConfigParser(interpolation=None)
    entry.optionxform = str  # keys are case-sensitive
    entry.read(root / "usr" / "share" / "applications" / f"{APP}.desktop")
    desktop = entry["Desktop Entry"]
    assert desktop["Type"] == "Application" and desktop["Name"] == "CMDSR Studio"
    assert desktop["Exec"].split()[0] == APP and desktop["Icon"] == APP
    icons = list(root.glob(f"usr/share/icons/hicolor/*/apps/{APP}.png"))
    assert icons and (root / "usr" / "share" / "pixmaps" / f"{APP}.png").is_file()
    assert icons[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    home = tmp_path / "home"
    home.mkdir()
    _selftest(launcher, home)
