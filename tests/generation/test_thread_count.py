"""A record's bytes do not depend on torch's intra-op thread count (docs/reliability.md, "Record
bytes and the thread count").

A Ray actor with one CPU runs torch with one thread; ``sfray generate`` in-process runs with as
many as the machine has. The same (seed, sample id, config) must give the same bytes in both.
Before the joint regression was made order-fixed, sample 7 of this run (the quickstart at 64x64)
changed bytes between one and two threads (its ``quality_landmark_depth`` moved in the fifth digit).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sfray.config.loader import load_config
from sfray.config.schema import GenerateJobConfig
from sfray.generation.producer import SampleProducer
from sfray.train.context import torch_threads

QUICKSTART = Path(__file__).resolve().parents[2] / "configs" / "generate" / "quickstart.yaml"


def test_records_are_the_same_bytes_under_one_and_two_threads(tmp_path):
    cfg = load_config(GenerateJobConfig, QUICKSTART, [
        f"output_dir={tmp_path}", "generate.num_samples=8", "generate.resolution=64", "generate.batch_size=4"])
    producer = SampleProducer(cfg, device="cpu")
    ids = np.arange(4, 8)  # one aligned batch
    records = {}
    for n in (1, 2):
        with torch_threads(n):
            records[n] = [p.record for p in producer.produce(ids)]
    assert all(records[1]), "the quickstart keeps every sample"
    changed = [int(i) for i, a, b in zip(ids, records[1], records[2]) if a != b]
    assert changed == [], f"samples {changed} changed bytes between one and two threads"


def test_intra_op_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(2 if before == 1 else 1):
        assert torch.get_num_threads() != before
    assert torch.get_num_threads() == before
