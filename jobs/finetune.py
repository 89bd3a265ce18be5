"""Ray job entrypoint: Stage II label finetuning (or resume it), then its report.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/finetune.py configs/finetune/paper.yaml benchmark.root=/data/LaPa ray.address=auto

Same arguments as ``sfray finetune``: a config YAML then dotlist overrides.
"""

import sys

from sfray.cli import main

if __name__ == "__main__":
    sys.exit(main(["finetune", *sys.argv[1:]]))
