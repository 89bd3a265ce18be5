#!/usr/bin/env bash
# Set up (idempotent), then run the main job on the embedded defaults (procedural head + renderer):
# generate -> Stage I -> LaPa-layout set -> Stage II -> evaluate -> report.md, under
# outputs/pipeline_quickstart/ (docs/quickstart.md). Extra args are pipeline config overrides;
# rerunning skips the finished stages and resumes the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec "${PYTHON:-python3}" -m sfray.cli pipeline configs/quickstart.yaml "$@"
