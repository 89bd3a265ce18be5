#!/usr/bin/env bash
# Check, before a release build, that the Dockerfile's base image and its torch build exist:
#   bash scripts/check_image_tags.sh
# Reads FROM, TORCH_VERSION and TORCH_INDEX_URL from the Dockerfile, then asks the registries:
# `docker manifest inspect` for the rayproject/ray tag, `pip index versions` for torch on the
# PyTorch index of that CUDA build. Exit 0 when both exist, 1 otherwise (docs/cluster.md, "The image").
set -uo pipefail
cd "$(dirname "$0")/.."
DOCKER=${DOCKER:-docker}
PIP=${PIP:-pip}

base=$(sed -n 's/^FROM[[:space:]]\{1,\}\([^[:space:]]\{1,\}\).*/\1/p' Dockerfile | head -n 1)
torch=$(sed -n 's/^ARG[[:space:]]\{1,\}TORCH_VERSION=//p' Dockerfile | head -n 1)
index=$(sed -n 's/^ARG[[:space:]]\{1,\}TORCH_INDEX_URL=//p' Dockerfile | head -n 1)
if [ -z "$base" ] || [ -z "$torch" ] || [ -z "$index" ]; then
    echo "Dockerfile: expected FROM, ARG TORCH_VERSION=... and ARG TORCH_INDEX_URL=..." >&2
    exit 1
fi

status=0
if "$DOCKER" manifest inspect "$base" > /dev/null 2>&1; then
    echo "ok       base image $base"
else
    echo "MISSING  base image $base: pick a tag listed at https://hub.docker.com/r/rayproject/ray/tags" >&2
    status=1
fi
# only the given index: no pip configuration file, no extra index or wheel folder from the environment
versions=$(env -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null \
    "$PIP" index versions torch --index-url "$index" 2> /dev/null | sed -n 's/^Available versions:[[:space:]]*//p')
build=$(basename "$index")   # cu128: the PyTorch index lists its wheels as 2.x.y or 2.x.y+cu128
if printf '%s\n' "$versions" | tr ',' '\n' | sed 's/[[:space:]]//g' | grep -qxF -e "$torch" -e "$torch+$build"; then
    echo "ok       torch $torch on $index"
else
    echo "MISSING  torch $torch on $index (available: ${versions:-none, or the index is unreachable})" >&2
    status=1
fi
exit $status
