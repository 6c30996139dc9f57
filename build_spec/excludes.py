"""What the frozen CMDSR Studio leaves out, kept apart from the spec so a fast test can check
that nothing the app imports at run time is on these lists (tests/packaging/test_bundle_excludes.py).

Leaving modules out keeps the bundle smaller and, above all, the build fast: PyInstaller
analyses every module it can reach, and torch reaches thousands it never runs for us.
"""

from __future__ import annotations

# Development and test tools that live in the same environments as the app.
DEV_TOOLS = [
    "pytest", "_pytest", "pluggy", "pytestqt", "pytest_timeout", "py",
    "mypy", "mypyc", "ruff", "importlinter", "grimp",
    "pip", "setuptools", "pkg_resources", "wheel", "distutils",
    "IPython", "jupyter", "notebook", "pydoc_data", "lib2to3", "tkinter", "_tkinter", "turtle",
]

# Optional companions torch or OpenCV use when present; the app uses none of them.
UNUSED_PACKAGES = [
    "torchvision", "torchaudio", "caffe2", "tensorboard", "onnx", "onnxruntime", "onnxscript",
    "triton", "matplotlib", "pandas", "scipy", "networkx", "transformers", "opt_einsum",
    "tensorflow", "jax", "numba",
]

# Parts of torch outside what CMDSR Studio runs (eager CPU/GPU inference and single-process
# training): compiler back ends, quantisation tooling, multi-process training launchers,
# torch's own test utilities. The top-level packages that ``import torch`` or the optimisers
# load on their own (torch.distributed, torch.onnx, torch._dynamo, torch._inductor, ...) stay.
TORCH_PARTS = [
    # (torch._dynamo imports a few helpers from torch.testing._internal; its test suites stay out)
    "torch.testing._internal.opinfo",
    "torch.testing._internal.generated",
    "torch.testing._internal.optests",
    "torch.testing._internal.distributed.rpc",
    "torch.testing._internal.distributed._tensor",
    "torch.testing._internal.distributed._shard",
    "torch.utils.tensorboard",
    "torch.utils.benchmark",
    "torch.utils.hipify",
    "torch.utils.bottleneck",
    "torch.utils.model_dump",
    "torch._inductor.codegen",
    "torch._inductor.fx_passes",
    "torch._inductor.kernel",
    "torch._inductor.template_heuristics",
    "torch._vendor.quack",
    "torch.distributed.checkpoint",
    "torch.distributed.elastic",
    "torch.distributed.pipelining",
    "torch.distributed.launcher",
    "torch.distributed.run",
    "torch.distributed._tools",
    "torch.distributed.optim",
    "torch.distributed.tensor.experimental",
    "torch.ao.quantization.fx",
    "torch.ao.ns",
    "torch.ao.pruning",
    "torch.fx.experimental.migrate_gradual_types",
    "torch.contrib",
    "torch._lazy",
    "torch.nativert",
]

# Qt modules the app never imports; some are reachable through PySide6's own helpers.
QT_PARTS = [
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    "PySide6.QtQuick3D", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets",
    "PySide6.QtWebChannel", "PySide6.QtWebSockets", "PySide6.Qt3DCore", "PySide6.Qt3DRender",
    "PySide6.Qt3DExtras", "PySide6.QtDesigner", "PySide6.QtUiTools", "PySide6.QtHelp",
    "PySide6.QtSql", "PySide6.QtTest", "PySide6.QtNetwork", "PySide6.QtDBus",
    "PySide6.QtConcurrent", "PySide6.QtXml", "PySide6.QtPdf", "PySide6.QtPdfWidgets",
    "PySide6.QtMultimedia", "PySide6.QtMultimediaWidgets", "PySide6.QtSvg", "PySide6.QtSvgWidgets",
    "PySide6.scripts",
]

EXCLUDES = DEV_TOOLS + UNUSED_PACKAGES + TORCH_PARTS + QT_PARTS

# Qt platform plugins worth shipping: X11, Wayland, and offscreen/minimal for the headless
# self-test. eglfs, linuxfb and vnc are for embedded devices.
QT_PLATFORMS_KEPT = ("xcb", "wayland", "offscreen", "minimal", "windows", "cocoa")
QT_PLUGIN_DIRS_DROPPED = ("egldeviceintegrations",)
# The GTK theme plugin would load the system's GTK against the bundle's own GLib and Cairo,
# a known cause of crashes; Qt's Fusion style and the XDG portal theme are used instead.
QT_PLUGINS_DROPPED = ("libqgtk3.so",)


def drop_from_bundle(dest: str) -> bool:
    """Whether a collected file (its path inside the bundle) is left out."""
    parts = dest.replace("\\", "/").split("/")
    if "translations" in parts and "Qt" in parts:
        return True  # the app is in English only
    if "plugins" in parts:
        i = parts.index("plugins")
        group = parts[i + 1] if len(parts) > i + 1 else ""
        if group in QT_PLUGIN_DIRS_DROPPED or parts[-1] in QT_PLUGINS_DROPPED:
            return True
        if group == "platforms" and len(parts) > i + 2:
            name = parts[i + 2].lower()
            return not any(keep in name for keep in QT_PLATFORMS_KEPT)
    return False


def is_excluded(module: str) -> bool:
    """Whether ``module`` falls under one of the excluded names."""
    return any(module == name or module.startswith(name + ".") for name in EXCLUDES)
