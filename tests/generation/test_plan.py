import numpy as np
import pytest

from sfray.generation.plan import plan_units


def test_units_cover_every_id_once_and_align_to_shards():
    units = plan_units(1000, 128)
    ids = np.concatenate([u.sample_ids for u in units])
    assert np.array_equal(ids, np.arange(1000))
    assert all(u.sample_ids[0] % 128 == 0 for u in units)
    assert [len(u.sample_ids) for u in units] == [128] * 7 + [104]


def test_resume_skips_done_ids():
    done = np.arange(0, 300)
    units = plan_units(512, 128, done)
    ids = np.concatenate([u.sample_ids for u in units])
    assert np.array_equal(ids, np.arange(300, 512))
    assert units[0].sample_ids[0] == 300 and units[0].unit == 2
    assert len(units[0].sample_ids) == 84


@pytest.mark.parametrize("start", [0, 3, 8, 13])
def test_batches_align_to_global_multiples(start):
    unit = plan_units(40, 40, np.arange(start))[0]
    batches = unit.batches(8)
    assert np.array_equal(np.concatenate(batches), np.arange(start, 40))
    for b in batches:
        assert len(set((b // 8).tolist())) == 1  # one aligned group per batch


def test_empty_plan_when_everything_done():
    assert plan_units(10, 4, np.arange(10)) == []
