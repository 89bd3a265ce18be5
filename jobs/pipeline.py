"""Ray job entrypoint: the whole pipeline, generate -> Stage I -> Stage II -> evaluate -> report.

    ray job submit --address http://HEAD:8265 --working-dir . -- \
        python jobs/pipeline.py configs/quickstart.yaml output_root=/mnt/sfray/pipeline

Same arguments as ``sfray pipeline``: a config YAML then dotlist overrides. Each stage's own
``ray.address`` decides where it runs (set it to auto through the stage's overrides on a cluster).
"""

import sys

from sfray.cli import main

if __name__ == "__main__":
    sys.exit(main(["pipeline", *sys.argv[1:]]))
