"""Ray job entrypoint: score the direct mapping and a finetuned model on a benchmark.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/evaluate.py configs/evaluate/quickstart.yaml benchmark.root=/data/LaPa

Same arguments as ``sfray evaluate``: a config YAML then dotlist overrides.
"""

import sys

from sfray.cli import main

if __name__ == "__main__":
    sys.exit(main(["evaluate", *sys.argv[1:]]))
