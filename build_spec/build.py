"""Build CMDSR Studio for users: a PyInstaller one-folder bundle, a .deb and a portable .tar.gz.

Runs with any Python 3.11+ and the standard library only; everything else goes into a clean
build environment (``build/venv``: the app's runtime dependencies and PyInstaller, no dev
tools), so nothing from a developer's environment leaks into the bundle.

    python3 build_spec/build.py                 # bundle only: dist/cmdsr-studio/
    python3 build_spec/build.py --deb --tar     # plus dist/*.deb and dist/*.tar.gz
    python3 build_spec/build.py --placeholder-resources --deb   # before the real model exists

Prints the bundle size, the package sizes and the time each step took. See docs/packaging.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "build_spec"
APP_NAME = "cmdsr-studio"
DISPLAY_NAME = "CMDSR Studio"
DEFAULT_MODEL = Path("models") / "cmdsr_x4.pt"  # same names as engine/resources.py
SAMPLE = Path("samples") / "sample.png"
# The CPU build of torch that the project pins where there is no NVIDIA GPU (as setup_env.sh).
CPU_TORCH = "torch==2.13.0"

sys.path.insert(0, str(SPEC_DIR))
from placeholder_resources import make_placeholder_icon  # noqa: E402 (stdlib-only helper)


class BuildError(Exception):
    """A build step failed; the message says which and why."""


def log(msg: str) -> None:
    print(f"[build] {msg}", flush=True)


def run(cmd: list[str], **kwargs: object) -> None:
    log("$ " + " ".join(str(c) for c in cmd))
    result = subprocess.run([str(c) for c in cmd], **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        raise BuildError(f"command failed (exit {result.returncode}): {cmd[0]} {cmd[1] if len(cmd) > 1 else ''}")


def human(n_bytes: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n_bytes < 1024 or unit == "GiB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1024
    return f"{n_bytes:.1f} GiB"


def tree_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def project_metadata() -> dict:
    import tomllib

    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def ensure_venv(venv: Path, fresh: bool) -> Path:
    """A clean environment with the runtime dependencies and the `build` extra only.

    Reused while it was made for the same requirements and Python (so it can live outside
    the checkout, shared by fresh clones); remade otherwise.
    """
    python = venv_python(venv)
    stamp = venv / ".cmdsr-build-env"
    meta = project_metadata()
    deps = list(meta["dependencies"]) + list(meta.get("optional-dependencies", {}).get("build", []))
    cpu_only = sys.platform.startswith("linux") and shutil.which("nvidia-smi") is None
    wanted = "\n".join([sys.version.split()[0], CPU_TORCH if cpu_only else "", *deps]) + "\n"
    if fresh and venv.exists():
        shutil.rmtree(venv)
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        log(f"reusing build environment {venv}")
        return python
    if not python.exists():
        run([sys.executable, "-m", "venv", venv])
    pip = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if cpu_only:
        # A plain "torch" could pull a CUDA build of several GB into a CPU-only bundle.
        run([*pip, CPU_TORCH])
    run([*pip, *deps])
    stamp.write_text(wanted)
    return python


def prepare_resources(args: argparse.Namespace, python: Path, work: Path) -> Path:
    resources = args.resources.resolve()
    if args.placeholder_resources:
        dest = work / "placeholder-resources"
        log("placeholder resources: filling in a stand-in model/sample where missing")
        run([python, SPEC_DIR / "placeholder_resources.py", dest, "--from", resources])
        return dest
    missing = [str(resources / p) for p in (DEFAULT_MODEL, SAMPLE) if not (resources / p).is_file()]
    if missing:
        raise BuildError(
            "missing shipped resources: " + ", ".join(missing)
            + " (add the trained model, or pass --placeholder-resources for a test build)"
        )
    return resources


def find_icon(resources: Path, work: Path) -> Path:
    """The drawn application icon for this platform, or a generated stand-in under build/."""
    icons = resources / "icons"
    wanted = {"win32": ".ico", "darwin": ".icns"}.get(sys.platform, ".png")
    for suffix in dict.fromkeys((wanted, ".png")):
        found = sorted(icons.glob(f"*{suffix}"), key=lambda p: (p.stem not in
                       ("cmdsr-studio", "cmdsr_studio", "app", "icon"), -p.stat().st_size))
        if found:
            return found[0]
    icon = work / "placeholder-icon" / f"{APP_NAME}.png"
    log(f"no icon in {icons}: using a generated placeholder ({icon})")
    return make_placeholder_icon(icon)


def normalise_permissions(path: Path) -> None:
    """Model files are written owner-only (atomic save via mkstemp): make everything readable
    so every user of an installed copy can run it."""
    for p in [path, *path.rglob("*")]:
        if p.is_symlink():
            continue
        mode = p.stat().st_mode & 0o777
        wanted = (mode | 0o444 | (0o111 if p.is_dir() or mode & 0o100 else 0)) & ~0o022
        if wanted != mode:
            p.chmod(wanted)


def build_bundle(python: Path, resources: Path, icon: Path, dist: Path, work: Path) -> Path:
    env = dict(os.environ, CMDSR_RESOURCES=str(resources), CMDSR_ICON=str(icon))
    run(
        [python, "-m", "PyInstaller", "--noconfirm", "--log-level", "WARN",
         "--distpath", dist, "--workpath", work / "pyinstaller", SPEC_DIR / "cmdsr.spec"],
        env=env,
    )
    bundle = dist / APP_NAME
    if not bundle.is_dir():
        raise BuildError(f"PyInstaller finished but {bundle} is missing")
    normalise_permissions(bundle)
    return bundle


def png_size(path: Path) -> int | None:
    """Width of a square PNG icon (from its header), to file it under hicolor/NxN."""
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        return None
    width, height = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    return width if width == height else None


LINUX_DIR = SPEC_DIR / "linux"  # .desktop entry, launcher, DEBIAN control and scripts


HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def icon_targets(icon: Path) -> list[tuple[Path, Path]]:
    """(source, path under the package root) for the menu icon: the main PNG in pixmaps, and
    every square PNG of a standard size beside it (e.g. 256 and 512) in the hicolor theme."""
    pairs = []
    if icon.suffix == ".png":
        pairs.append((icon, Path("usr/share/pixmaps") / f"{APP_NAME}.png"))
    sizes: dict[int, Path] = {}
    for png in sorted(icon.parent.glob("*.png")):
        size = png_size(png)
        if size in HICOLOR_SIZES and (size not in sizes or png == icon):
            sizes[size] = png
    for size, png in sorted(sizes.items()):
        pairs.append((png, Path("usr/share/icons/hicolor") / f"{size}x{size}" / "apps" / f"{APP_NAME}.png"))
    return pairs


def deb_arch() -> str:
    if shutil.which("dpkg"):
        out = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True)
        if out.returncode == 0 and out.stdout.strip():
            return out.stdout.strip()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def link_or_copy_tree(src: Path, dest: Path) -> None:
    """Hard links where the file system allows (instant, no extra space), else a copy."""
    try:
        shutil.copytree(src, dest, symlinks=True, copy_function=os.link)
    except OSError:
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(src, dest, symlinks=True)


def build_deb(bundle: Path, icon: Path, dist: Path, work: Path, version: str,
              compression: str, level: int) -> Path:
    if shutil.which("dpkg-deb") is None:
        raise BuildError("dpkg-deb not found (install the dpkg package)")
    arch = deb_arch()
    stage = work / "deb" / f"{APP_NAME}_{version}_{arch}"
    if stage.exists():
        shutil.rmtree(stage)
    link_or_copy_tree(bundle, stage / "opt" / APP_NAME)
    launcher = stage / "usr" / "bin" / APP_NAME
    launcher.parent.mkdir(parents=True)
    shutil.copyfile(LINUX_DIR / "launcher.sh", launcher)
    launcher.chmod(0o755)
    apps = stage / "usr" / "share" / "applications"
    apps.mkdir(parents=True)
    shutil.copyfile(LINUX_DIR / f"{APP_NAME}.desktop", apps / f"{APP_NAME}.desktop")
    for source, target in icon_targets(icon):
        target = stage / target
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    debian = stage / "DEBIAN"
    debian.mkdir()
    installed_kib = (tree_size(stage) + 1023) // 1024
    control = (LINUX_DIR / "control").read_text()
    for key, value in (("VERSION", version), ("ARCH", arch), ("INSTALLED_SIZE", installed_kib)):
        control = control.replace(f"@{key}@", str(value))
    (debian / "control").write_text(control)
    for name in ("postinst", "postrm"):
        shutil.copyfile(LINUX_DIR / name, debian / name)
        (debian / name).chmod(0o755)
    normalise_permissions(stage)
    deb = dist / f"{APP_NAME}_{version}_{arch}.deb"
    run(["dpkg-deb", "--root-owner-group", f"-Z{compression}", f"-z{level}", "--build", stage, deb],
        stdout=subprocess.DEVNULL)
    shutil.rmtree(stage)
    return deb


def build_tar(bundle: Path, icon: Path, dist: Path, version: str, level: int) -> Path:
    """The bundle folder as a portable archive (unpack anywhere, run cmdsr-studio inside)."""
    arch = platform.machine()
    tar_path = dist / f"{APP_NAME}-{version}-linux-{arch}.tar.gz"
    extras = bundle / f"{APP_NAME}.desktop"  # for users who put cmdsr-studio on their PATH
    shutil.copyfile(LINUX_DIR / f"{APP_NAME}.desktop", extras)
    shutil.copyfile(icon, bundle / f"{APP_NAME}{icon.suffix}")
    try:
        run(["tar", "-C", bundle.parent, "-I", f"gzip -{level}", "-cf", tar_path, bundle.name])
    finally:
        extras.unlink()
        (bundle / f"{APP_NAME}{icon.suffix}").unlink()
    return tar_path


DEFAULT_LEVELS = {"zstd": 9, "gzip": 6, "xz": 6, "none": 0}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=ROOT / "build" / "venv",
                        help="build environment (made if missing or made for other requirements)")
    parser.add_argument("--fresh-venv", action="store_true", help="recreate the build environment")
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="output folder")
    parser.add_argument("--work", type=Path, default=ROOT / "build", help="scratch folder")
    parser.add_argument("--resources", type=Path, default=ROOT / "resources",
                        help="resources folder to ship (models, icons, samples)")
    parser.add_argument("--placeholder-resources", action="store_true",
                        help="fill in a stand-in model and sample where missing (test builds)")
    parser.add_argument("--skip-bundle", action="store_true",
                        help="package the existing dist/cmdsr-studio instead of rebuilding it")
    parser.add_argument("--deb", action="store_true", help="also build the .deb (Linux)")
    parser.add_argument("--tar", action="store_true", help="also build the portable .tar.gz")
    # zstd -9 gives the smallest .deb in reasonable time (xz takes many minutes over 860 MB of
    # libraries on a small machine). dpkg reads zstd since 1.21.18: every system whose glibc
    # the bundle runs on (Debian 12, Ubuntu 23.04 and later) has it.
    parser.add_argument("--compression", default="zstd", choices=("zstd", "gzip", "xz", "none"),
                        help=".deb compression (default zstd; gzip for older dpkg)")
    parser.add_argument("--level", type=int, default=None,
                        help="compression level (default: zstd 9, gzip 6, xz 6; .tar.gz: gzip 6)")
    args = parser.parse_args(argv)

    dist, work = args.dist.resolve(), args.work.resolve()
    dist.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    version = project_metadata()["version"]
    timings: list[tuple[str, float]] = []
    started = time.perf_counter()
    try:
        t = time.perf_counter()
        bundle = dist / APP_NAME
        if args.skip_bundle:
            # Repackaging: the bundle already holds its resources; only the icon is needed.
            icon = find_icon(args.resources.resolve(), work)
        else:
            python = ensure_venv(args.venv.resolve(), args.fresh_venv)
            resources = prepare_resources(args, python, work)
            icon = find_icon(resources, work)
            timings.append(("build environment", time.perf_counter() - t))
        if not args.skip_bundle:
            t = time.perf_counter()
            bundle = build_bundle(python, resources, icon, dist, work)
            timings.append(("PyInstaller bundle", time.perf_counter() - t))
        elif not bundle.is_dir():
            raise BuildError(f"--skip-bundle: {bundle} does not exist")
        log(f"bundle: {bundle} ({human(tree_size(bundle))})")
        outputs = []
        if args.deb:
            t = time.perf_counter()
            level = args.level if args.level is not None else DEFAULT_LEVELS[args.compression]
            deb = build_deb(bundle, icon, dist, work, version, args.compression, level)
            timings.append((".deb package", time.perf_counter() - t))
            outputs.append(deb)
        if args.tar:
            t = time.perf_counter()
            level = min(max(args.level if args.level is not None else 6, 1), 9)  # gzip's range
            outputs.append(build_tar(bundle, icon, dist, version, level))
            timings.append((".tar.gz archive", time.perf_counter() - t))
    except BuildError as exc:
        print(f"build failed: {exc}", file=sys.stderr)
        return 1
    for out in outputs:
        log(f"package: {out} ({human(out.stat().st_size)})")
    for name, seconds in timings:
        log(f"time: {name}: {seconds:.0f} s")
    log(f"bundle size: {human(tree_size(bundle))}; build time: {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
