"""The bundle's exclude lists never cut a module the app imports at run time.

A fresh interpreter imports every engine and app module, loads and saves a model, upscales and
takes an optimiser step (which loads torch._dynamo lazily), then lists what it imported; none
of it may fall under build_spec/excludes.py. Catches an exclude that would only fail in the
frozen app, in seconds instead of a full build.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

_TRACE = r"""
import importlib, json, pkgutil, sys, tempfile
from pathlib import Path
import torch
import torch.nn.functional as F
torch.set_num_threads(1)
for name in ("engine", "cmdsr_app"):
    package = importlib.import_module(name)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "__main__":
            importlib.import_module(f"{name}.{info.name}")
from engine import ModelConfig, build_model, load_model, save_model
model = build_model(ModelConfig(scale=4, channels=4, blocks=1, support_size=2, cond_channels=4))
optimiser = torch.optim.Adam(model.parameters(), lr=1e-4)
lr, support = torch.rand(2, 3, 8, 8) * 255, torch.rand(2, 2, 3, 8, 8) * 255
optimiser.zero_grad()
F.l1_loss(model(lr, support), torch.zeros(2, 3, 32, 32)).backward()
optimiser.step()
with tempfile.TemporaryDirectory() as tmp:
    save_model(model, Path(tmp) / "m.pt")
    model = load_model(Path(tmp) / "m.pt")
    torch.save(optimiser.state_dict(), Path(tmp) / "o.pt")
    torch.load(Path(tmp) / "o.pt", weights_only=True)
with torch.inference_mode():
    model.fold(support[:1])(lr[:1])
print(json.dumps(sorted(sys.modules)))
"""


def _excludes():
    spec = importlib.util.spec_from_file_location("excludes", ROOT / "build_spec" / "excludes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_no_runtime_module_is_excluded() -> None:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    result = subprocess.run([sys.executable, "-c", _TRACE], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert "torch._dynamo" in imported  # the trace really reached the lazy imports
    excludes = _excludes()
    cut = [name for name in imported if excludes.is_excluded(name)]
    assert cut == [], f"excluded from the bundle but imported at run time: {cut[:20]}"


def test_bundle_filter_keeps_desktop_platforms_and_drops_embedded_ones() -> None:
    drop = _excludes().drop_from_bundle
    plugins = "PySide6/Qt/plugins"
    for kept in ("platforms/libqxcb.so", "platforms/libqoffscreen.so", "platforms/libqminimal.so",
                 "platforms/libqwayland-egl.so", "platforms/qwindows.dll",
                 "platforms/libqcocoa.dylib", "imageformats/libqjpeg.so", "xcbglintegrations/x.so",
                 "platformthemes/libqxdgdesktopportal.so"):
        assert not drop(f"{plugins}/{kept}"), kept
    for dropped in ("platforms/libqeglfs.so", "platforms/libqlinuxfb.so", "platforms/libqvnc.so",
                    "egldeviceintegrations/libqeglfs-kms-integration.so",
                    "platformthemes/libqgtk3.so"):
        assert drop(f"{plugins}/{dropped}"), dropped
    assert drop("PySide6/Qt/translations/qtbase_de.qm")
    assert not drop("torch/lib/libtorch_cpu.so")
    assert not drop("resources/models/cmdsr_x4.pt")
