# sfray on a CUDA Ray image: generator actors and training workers run from this image.
# Build:  docker build -t sfray:0.1.0 .
# The tag pins Ray to the version in pyproject.toml (Datasink/Datasource are DeveloperAPI and
# change between minor releases). Check that the tag exists before a release build.
FROM rayproject/ray:2.60.0-py311-cu128

WORKDIR /opt/sfray
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users sfray ./sfray
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users configs ./configs

# torch for CUDA 12.8 comes from the image's pip index configuration; pin to the tested release.
RUN pip install --no-cache-dir "torch==2.13.0" && pip install --no-cache-dir -e .

# Licensed assets (FLAME, Next3D weights, benchmarks) are never baked in: mount them and point
# the config at them, e.g. head.path=/assets/flame/generic_model.pkl.
ENV SFRAY_ASSETS=/assets
