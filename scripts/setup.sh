#!/usr/bin/env bash
# Install sfray and its dependencies on a fresh machine. CPU machines get the CPU build of torch
# (never the multi-GB CUDA build); set SFRAY_TORCH to choose another torch requirement.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q "${SFRAY_TORCH:-torch==2.13.0}"
fi
"$PY" -m pip install -q -e ".[dev]"
