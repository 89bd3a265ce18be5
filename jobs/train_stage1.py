"""Ray job entrypoint: train (or resume) Stage I.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/train_stage1.py configs/train/paper.yaml data.dataset_dir=/data/paper ray.address=auto

Same arguments as ``sfray train``: a config YAML then dotlist overrides.
"""

import sys

from sfray.cli import main

if __name__ == "__main__":
    sys.exit(main(["train", *sys.argv[1:]]))
