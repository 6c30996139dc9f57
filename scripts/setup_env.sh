#!/usr/bin/env bash
# Create or reuse the project's virtual environment in .venv and install CMDSR Studio into it.
# On a machine without an NVIDIA GPU we pin the CPU build of torch that lies on disk here
# (an unpinned torch could pull a CUDA build of several GB); with a GPU, pip picks its own.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
extras="${1:-}"
python_bin="${PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
    "$python_bin" -m venv "$venv"
fi
stamp="$venv/.cmdsr-installed${extras:+-$extras}"
if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    if ! command -v nvidia-smi >/dev/null 2>&1; then
        "$venv/bin/pip" install -q "torch==2.13.0" || "$venv/bin/pip" install -q "torch>=2.2"
    fi
    "$venv/bin/pip" install -q -e "$root${extras:+[$extras]}"
    touch "$stamp"
fi
