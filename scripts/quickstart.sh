#!/usr/bin/env bash
# Set up (idempotent), then generate the quickstart dataset on the embedded defaults (procedural
# head + procedural renderer) and write its preview sheet. Extra args are config overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m sfray.cli generate configs/generate/quickstart.yaml "$@"
