#!/usr/bin/env bash
# Every GPU row of docs/benchmarks.md in one prepared run (about 5 minutes on one H100).
#
#   bash bench/gpu.sh                      # on a GPU node: all rows, appended to docs/benchmarks.md
#   bash bench/gpu.sh --tests              # also the CUDA tests first (pytest -m gpu, at most 3 minutes)
#   bash bench/gpu.sh --device cpu --quick # the same steps, tiny sizes, on CPU (checks the script)
#   options: --no-append (print only), --budget SECONDS (default 360: steps are cut to fit it)
#
# Rows (each prints JSON lines and appends table rows with its same-run baseline):
#   1. rasterizer: span vs bounding-box backend, 10k faces, 512², batch 8
#   2. Next3D full network, fp32 and bf16, batch 1/8/32/64, reference ops vs fast paths
#   3. Next3D bf16 batch 32/64 with CUDA graphs
#   4. the procedural producer loop at 512², batch 32 (generate + annotate + quality + encode)
#   5. the Ray pipeline vs the in-process loop (skipped with a JSON line when Ray is missing)
#   5b. the Ray pipeline single-stage (actor encodes) vs two-stage (CPU encode stage): generator busy
#      time vs wall time, same run (skipped with a JSON line when Ray is missing)
#   6. Next3D bf16 batch 32 with torch.compile (last: compile time is the least predictable)
#
# Needs torch, numpy, scipy, pillow; sfray's config loader needs omegaconf (+ antlr4 runtime,
# PyYAML). When omegaconf is missing the script installs the wheels carried in .whl/ (see
# docs/benchmarks.md, "GPU script") with pip install --no-index.
set -uo pipefail

DEVICE=cuda
QUICK=0
TESTS=0
APPEND=docs/benchmarks.md
BUDGET=360
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --tests) TESTS=1; shift ;;
    --no-append) APPEND=""; shift ;;
    --budget) BUDGET=$2; shift 2 ;;
    -h|--help) sed -n 2,20p "$0"; exit 0 ;;
    *) echo "bench/gpu.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done

cd "$(dirname "$0")/.." || exit 2
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-outputs/bench}
mkdir -p "$OUT"
LOG="$OUT/gpu-$(date +%Y%m%d-%H%M%S).jsonl"
START=$(date +%s)
APP=()
[ -n "$APPEND" ] && APP=(--append "$APPEND")

note() { echo "$1" | tee -a "$LOG"; }

if ! python -c "import omegaconf" 2>/dev/null; then
  if ls .whl/*.whl >/dev/null 2>&1; then
    pip install --quiet --no-index .whl/*.whl || note '{"bench": "setup", "error": "pip install --no-index .whl/*.whl failed"}'
  else
    note '{"bench": "setup", "error": "omegaconf is missing and there is no .whl/ folder; rows that load configs will fail"}'
  fi
fi
if [ "$DEVICE" = cuda ] && ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  note '{"bench": "setup", "error": "--device cuda but torch sees no CUDA device"}'
  exit 1
fi
python -c "import json, torch, platform; print(json.dumps({'bench': 'setup', 'torch': torch.__version__, 'python': platform.python_version(), 'device': torch.cuda.get_device_name() if torch.cuda.is_available() else platform.machine()}))" | tee -a "$LOG"

# step NAME SECONDS CMD...: run CMD with a time limit (never past the budget), keep its JSON lines
step() {
  local name=$1 limit=$2
  shift 2
  local left=$((BUDGET - ($(date +%s) - START)))
  if [ "$left" -le 10 ]; then
    note "{\"bench\": \"$name\", \"skipped\": \"time budget of ${BUDGET}s used up\"}"
    return
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "== $name (limit ${limit}s): $*" >&2
  timeout "$limit" "$@" > >(grep --line-buffered '^{' | tee -a "$LOG") 2> "$OUT/$name.stderr"
  local rc=$?
  if [ "$rc" -eq 124 ]; then
    note "{\"bench\": \"$name\", \"error\": \"timed out after ${limit}s\"}"
  elif [ "$rc" -ne 0 ]; then
    note "{\"bench\": \"$name\", \"error\": \"exit $rc\", \"stderr\": $(tail -n 3 "$OUT/$name.stderr" | python -c 'import json,sys; print(json.dumps(sys.stdin.read()))')}"
  fi
}

if [ "$TESTS" = 1 ]; then
  step tests 180 python -m pytest -q -m gpu tests/generators/next3d/test_gpu.py tests/geometry -p no:cacheprovider \
    --junitxml "$OUT/gpu-tests.xml"
  python - "$OUT/gpu-tests.xml" <<'EOF' | tee -a "$LOG"
import json, sys, xml.etree.ElementTree as ET
try:
    s = ET.parse(sys.argv[1]).getroot()
    s = s if s.tag == "testsuite" else s[0]
    print(json.dumps({"bench": "tests", **{k: int(s.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}}))
except Exception as exc:  # no report: the step above printed why
    print(json.dumps({"bench": "tests", "error": str(exc)}))
EOF
  START=$(date +%s)  # the bench budget starts after the tests
fi

if [ "$QUICK" = 1 ]; then
  RASTER=(--batch 2 --faces 2000 --res 128 --repeats 2 --baselines none)
  NET=(--config small --repeat 2)
  BATCHES=(1 2)
  GRAPH_BATCHES=(2)
  GEN=(--samples 8 --res 128 --batch 4 --shard 8)
  RAYGEN=(--samples 16 --res 128 --batch 4 --shard 8 --actors 1)
  STAGES=(--samples 16 --res 128 --batch 4 --shard 8 --actors 1)
else
  RASTER=(--batch 8 --faces 10000 --res 512 --repeats 5 --baselines none)
  NET=(--config full --repeat 3)
  BATCHES=(1 8 32 64)
  GRAPH_BATCHES=(32 64)
  GEN=(--samples 256 --res 512 --batch 32 --shard 128)
  RAYGEN=(--samples 1024 --res 512 --batch 32 --shard 128 --actors 1 --gpus-per-actor 1)
  STAGES=(--samples 1024 --res 512 --batch 32 --shard 64 --actors 1 --gpus-per-actor 1)
fi

step raster 60 python bench/raster.py --device "$DEVICE" --backends span,bbox "${RASTER[@]}" "${APP[@]}"
step next3d 150 python bench/next3d.py --device "$DEVICE" "${NET[@]}" --batches "${BATCHES[@]}" \
  --precisions fp32 bf16 --paths ref fast "${APP[@]}"
if [ "$DEVICE" = cuda ]; then
  step next3d_graphs 45 python bench/next3d.py --device "$DEVICE" "${NET[@]}" --batches "${GRAPH_BATCHES[@]}" \
    --precisions bf16 --paths fast --cuda-graphs "${APP[@]}"
else
  note '{"bench": "next3d_graphs", "skipped": "CUDA graphs need a CUDA device"}'
fi
step producer 45 python bench/generate.py --mode loop --no-write --device "$DEVICE" "${GEN[@]}" "${APP[@]}"
if python -c "import ray" 2>/dev/null; then
  step ray_pipeline 120 python bench/generate.py --mode both --device "$DEVICE" "${RAYGEN[@]}" "${APP[@]}"
  step ray_stages 120 python bench/generate.py --mode stages --device "$DEVICE" "${STAGES[@]}" "${APP[@]}"
else
  note '{"bench": "ray_pipeline", "skipped": "ray is not installed on this machine (its wheel cannot be carried); run bench/generate.py on a node with Ray"}'
  note '{"bench": "ray_stages", "skipped": "ray is not installed on this machine (its wheel cannot be carried); run bench/generate.py --mode stages on a node with Ray"}'
fi
if [ "$DEVICE" = cuda ]; then  # last: compilation time is the least predictable step
  step next3d_compile 120 python bench/next3d.py --device "$DEVICE" "${NET[@]}" --batches "${GRAPH_BATCHES[0]}" \
    --precisions bf16 --paths fast --compile "${APP[@]}"
else
  note '{"bench": "next3d_compile", "skipped": "generator.next3d.compile applies to CUDA devices only"}'
fi
note "{\"bench\": \"gpu.sh\", \"seconds\": $(( $(date +%s) - START )), \"log\": \"$LOG\"}"
