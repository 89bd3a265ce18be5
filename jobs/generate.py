"""Ray job entrypoint: generate (or resume) a dataset.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/generate.py configs/generate/quickstart.yaml generate.num_samples=10000 ray.address=auto

Same arguments as ``sfray generate``: a config YAML then dotlist overrides.
"""

import sys

from sfray.cli import main

if __name__ == "__main__":
    sys.exit(main(["generate", *sys.argv[1:]]))
