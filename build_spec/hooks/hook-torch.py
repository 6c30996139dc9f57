"""Our own PyInstaller hook for torch, replacing the generic one from pyinstaller-hooks-contrib.

The generic hook collects every torch submodule (``collect_submodules``), its data files and
every shared library, which makes the analysis take many minutes and drags in the test
libraries, headers and tools. CMDSR Studio only needs what its imports reach, plus the
shared libraries torch loads by itself.
"""

import os

from PyInstaller.utils.hooks import collect_dynamic_libs, collect_submodules, get_package_paths

# torch.jit, torch._dynamo and custom-op registration read Python source with inspect, so
# keep the .py files beside the compiled modules (as the generic hook does).
module_collection_mode = "pyz+py"
warn_on_missing_hiddenimports = False

# torch._dynamo (loaded lazily by the optimisers) imports its polyfill modules by name.
hiddenimports = collect_submodules("torch._dynamo.polyfills")

# Libraries torch builds for its own test suite and for TorchScript backends we never use.
_UNUSED_LIBS = ("test", "backend_with_compiler", "aoti_custom_ops", "jitbackend")

binaries = [
    (src, dest)
    for src, dest in collect_dynamic_libs(
        "torch", search_patterns=["*.dll", "*.dylib", "lib*.so", "*.so.*"]
    )
    if not any(part in src.rsplit("/", 1)[-1].rsplit("\\", 1)[-1] for part in _UNUSED_LIBS)
    and "/bin/" not in src.replace("\\", "/")
]

# `import torch` checks that its shared-memory helper exists (Linux and macOS); the rest of
# torch/bin is test programs and protoc.
_shm_manager = os.path.join(get_package_paths("torch")[1], "bin", "torch_shm_manager")
if os.path.exists(_shm_manager):
    binaries.append((_shm_manager, os.path.join("torch", "bin")))

# Symlinks from the top-level folder to torch/lib confuse torch's own library lookup.
bindepend_symlink_suppression = ["**/torch/lib/*.so*"]
