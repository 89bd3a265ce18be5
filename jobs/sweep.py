"""Ray job entrypoint: run (or resume) a sweep of Stage I trials with Ray Tune.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/sweep.py configs/sweep/paper.yaml ray.address=auto

Same arguments as ``sfray sweep``: a config YAML then dotlist overrides.
"""

import sys

from sfray.cli import main

if __name__ == "__main__":
    sys.exit(main(["sweep", *sys.argv[1:]]))
