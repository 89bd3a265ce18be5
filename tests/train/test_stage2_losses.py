"""Stage II's joint loss (cross-entropy plus, when weighted, a soft Dice term over the same pixels),
and the torch thread count of one in-process run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sfray.config import load_config
from sfray.config.finetune import FinetuneJobConfig
from sfray.conventions import IGNORE_LABEL, Field
from sfray.losses.dense import soft_dice
from sfray.models import build_model
from sfray.models.labelnet import LabelNetSpec
from sfray.train.stage2_task import LOSS, Stage2Task

ROOT = Path(__file__).resolve().parents[2]


def _losses(dice: float) -> tuple[dict, torch.Tensor, torch.Tensor]:
    cfg = load_config(FinetuneJobConfig, ROOT / "configs/finetune/quickstart.yaml",
                      [f"loss.parsing_dice={dice}", "loss.parsing=2.0"])
    task = Stage2Task(cfg, build_model("tiny"), LabelNetSpec(num_classes=4))
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 8, 8, generator=g)
    target = torch.randint(0, 4, (2, 8, 8), generator=g)
    target[0, :2] = IGNORE_LABEL
    return task.losses({Field.SEGMENTATION: logits}, {Field.SEGMENTATION: target}), logits, target


@pytest.mark.parametrize("dice", [0.0, 0.5])
def test_the_dice_term_is_added_to_the_parsing_term_when_weighted(dice):
    terms, logits, target = _losses(dice)
    ce = F.cross_entropy(logits, target, ignore_index=IGNORE_LABEL)
    torch.testing.assert_close(terms["parsing"], ce)
    if dice == 0:
        assert "parsing_dice" not in terms
        torch.testing.assert_close(terms[LOSS], 2.0 * ce)
    else:
        d = soft_dice(logits, target)
        torch.testing.assert_close(terms["parsing_dice"], d)
        torch.testing.assert_close(terms[LOSS], 2.0 * (ce + dice * d))


def test_train_threads_apply_to_one_run_and_are_restored():
    from sfray.train.context import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1 if before != 1 else 2):
        assert torch.get_num_threads() == (1 if before != 1 else 2)
    assert torch.get_num_threads() == before
    with torch_threads(0):  # 0: torch's own setting, untouched
        assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("a failed run restores them too")
    assert torch.get_num_threads() == before
