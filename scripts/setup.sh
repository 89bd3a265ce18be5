#!/usr/bin/env bash
# Install sfray and its dependencies on a fresh machine. CPU machines get the CPU build of torch
# (never the multi-GB CUDA build); set SFRAY_TORCH to choose another torch requirement.
# A machine that already has sfray installed with its dev tools is left as it is (re-running the
# editable install would repoint it at this checkout); SFRAY_SETUP=force reinstalls anyway.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q "${SFRAY_TORCH:-torch==2.13.0}"
fi
installed() {
    "$PY" - <<'PYEOF' 2>/dev/null
import importlib.metadata as md
import importlib.util as iu

md.distribution("sfray")
missing = [m for m in ("pytest", "pytest_timeout", "ruff", "ray", "lmdb", "pyarrow", "omegaconf", "kornia",
                       "torchmetrics", "scipy", "safetensors", "yaml", "psutil", "zstandard")
           if iu.find_spec(m) is None]
raise SystemExit(1 if missing else 0)
PYEOF
}
if [ "${SFRAY_SETUP:-}" = "force" ] || ! installed; then
    "$PY" -m pip install -q -e ".[dev]"
fi
