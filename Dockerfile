# sfray on a CUDA Ray image: the head, generator actors and training workers of the cluster
# configs in cluster/ all run this image (docs/cluster.md, "The image").
#
#   docker build -t registry.example.com/sfray:0.1.0-ray2.60.0-py311-cu128 .
#   docker push registry.example.com/sfray:0.1.0-ray2.60.0-py311-cu128
#
# The tag is <sfray version>-ray<base tag>: the Ray version must equal the one pinned in
# pyproject.toml (Datasink/Datasource are DeveloperAPI and change between minor releases), and
# the CUDA tag of the base must equal the CUDA build of torch below. Before a release build,
# check that both exist: bash scripts/check_image_tags.sh (tests/cluster checks they agree).
FROM rayproject/ray:2.60.0-py311-cu128

# torch for the base image's CUDA (12.8), from the PyTorch index of that CUDA build; pinned to the
# release the test suite runs. Its own layer: the largest one, rebuilt only when the pin changes.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

# The base image runs as the non-root user `ray` (home /home/ray); so does everything below.
# The directory is made by that user so that the build can write into it.
RUN mkdir -p /home/ray/sfray
WORKDIR /home/ray/sfray

# sfray's dependencies, read from pyproject.toml: this layer changes only when they do. torch and
# ray are already satisfied (the torch pin above, the Ray of the base image).
COPY --chown=ray:users pyproject.toml ./
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps))" \
    && pip install --no-cache-dir -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# sfray itself (small layer), plus the job entrypoints and presets, so that
# `python jobs/X.py configs/...` runs from this directory (the RayJob manifests use it as their
# working_dir).
COPY --chown=ray:users README.md ./
COPY --chown=ray:users sfray ./sfray
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users configs ./configs
RUN pip install --no-cache-dir --no-deps . && rm -rf build sfray.egg-info

# Licensed assets (FLAME, Next3D weights, benchmarks) are never baked in: they live on the shared
# storage mounted at /mnt/sfray and the configs point at them (docs/assets.md).
