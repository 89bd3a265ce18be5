"""generic_model.pkl loading: FLAME 2020/2023 layouts without chumpy, bad input, unsafe pickles."""

from __future__ import annotations

import importlib.util
import io
import os
import pickle
import shutil
import subprocess

import numpy as np
import pytest
import scipy.sparse as sp
from flame_fixture_builder import FakeCh, build_truth, dump_with_fake_chumpy, model_dict, save_npy_object

from sfray.errors import AssetError, UnsafePickleError
from sfray.head.flame_embedding import read_landmark_embedding
from sfray.head.flame_model import read_flame_model
from sfray.head.flame_pickle import load_pickle_file, model_allowed, to_numpy


def test_flame2020_layout_loads_without_chumpy(flame_files):
    assert importlib.util.find_spec("chumpy") is None, "these tests must run without chumpy installed"
    t = flame_files.truth
    m = read_flame_model(flame_files.model)
    assert m.containers["shapedirs"] == "chumpy.ch.Ch"
    assert "scipy.sparse" in m.containers["J_regressor"]
    assert np.array_equal(m.v_template, t.v_template)
    assert np.array_equal(m.faces, t.faces) and m.faces.dtype == np.int64
    assert np.array_equal(m.shapedirs, t.shapedirs[:, :, :300])
    assert np.array_equal(m.exprdirs, t.shapedirs[:, :, 300:])
    assert np.array_equal(m.posedirs, t.posedirs)
    assert np.array_equal(m.j_regressor, t.j_regressor)
    assert np.array_equal(m.weights, t.weights)
    assert m.parents.tolist() == [-1, 0, 1, 1, 1]


def test_flame2023_layout_plain_numpy_loads(flame_files):
    t = flame_files.truth
    m = read_flame_model(flame_files.model_2023)
    assert m.containers["shapedirs"] == "ndarray" and m.containers["J_regressor"] == "ndarray"
    assert np.array_equal(m.shapedirs, t.shapedirs[:, :, :300])
    assert np.array_equal(m.exprdirs, t.shapedirs[:, :, 300:])


def test_python2_style_protocol0_chumpy_object_via_copy_reg():
    # protocol 0 from python 3 writes copy_reg._reconstructor, as python 2 pickles do
    x = np.arange(12.0).reshape(2, 3, 2)
    buf = io.BytesIO()
    dump_with_fake_chumpy({"shapedirs": FakeCh(x), "s": sp.csc_matrix(np.eye(3))}, buf, protocol=0)
    assert b"copy_reg" in buf.getvalue()
    d = load_pickle_file(io.BytesIO(buf.getvalue()), model_allowed(), what="FLAME model")
    assert np.array_equal(to_numpy(d["shapedirs"], source="mem", key="shapedirs"), x)
    assert np.array_equal(to_numpy(d["s"], source="mem", key="s"), np.eye(3))


def test_chumpy_expression_without_stored_array_is_explained():
    buf = io.BytesIO()
    expression = FakeCh(None, {"a": 1, "b": 2})  # a derived chumpy op: operands, no stored 'x'
    dump_with_fake_chumpy({"a": expression}, buf, class_name="add", module="chumpy.ch_ops")
    d = load_pickle_file(io.BytesIO(buf.getvalue()), model_allowed(), what="FLAME model")
    with pytest.raises(AssetError, match=r"chumpy expression \(chumpy.ch_ops.add\)"):
        to_numpy(d["a"], source="mem", key="a")


# ---------------------------------------------------------------------------------------------
# Bad input: one clear error naming the file and what was expected
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_truth():
    return build_truth(seed=1)


def _write(path, d, protocol=2):
    with open(path, "wb") as fh:
        pickle.dump(d, fh, protocol=protocol)
    return path


def test_missing_file(tmp_path):
    with pytest.raises(AssetError, match=r"nope.pkl: file not found \(expected a FLAME model"):
        read_flame_model(tmp_path / "nope.pkl")


def test_body_model_is_recognised(tmp_path):
    rng = np.random.default_rng(0)
    smpl = {"v_template": rng.normal(size=(6890, 3)), "f": rng.integers(0, 6890, (13776, 3)),
            "shapedirs": rng.normal(size=(6890, 3, 10)), "posedirs": rng.normal(size=(6890, 3, 207)),
            "J_regressor": sp.csc_matrix((24, 6890)), "kintree_table": np.zeros((2, 24), np.int64),
            "weights": np.full((6890, 24), 1 / 24)}
    p = _write(tmp_path / "basicModel_neutral.pkl", smpl)
    with pytest.raises(AssetError, match=r"basicModel_neutral.pkl: v_template has 6890 vertices \(this looks "
                                         r"like an SMPL/SMPL-H body model, not FLAME\); expected a FLAME "
                                         r"generic_model"):
        read_flame_model(p)


@pytest.mark.parametrize("key,bad,match", [
    ("posedirs", np.zeros((5023, 3, 35)), r"'posedirs' has shape \(5023, 3, 35\), expected \(5023, 3, 36\)"),
    ("f", np.zeros((9000, 3), np.int64), r"'f' has shape \(9000, 3\), expected \(9976, 3\)"),
    ("shapedirs", np.zeros((5023, 3, 100)), r"'shapedirs' has shape \(5023, 3, 100\)"),
    ("weights", np.full((5023, 5), 0.5), "weights' rows must sum to 1"),
    ("J_regressor", np.zeros((4, 5023)), r"'J_regressor' has shape \(4, 5023\)"),
])
def test_wrong_shapes(tmp_path, small_truth, key, bad, match):
    d = model_dict(small_truth, chumpy=False)
    d[key] = bad
    p = _write(tmp_path / "generic_model.pkl", d)
    with pytest.raises(AssetError, match=match) as err:
        read_flame_model(p)
    assert str(p) in str(err.value) and "expected a FLAME generic_model.pkl" in str(err.value)


def test_missing_keys_and_not_a_dict(tmp_path, small_truth):
    d = model_dict(small_truth, chumpy=False)
    del d["weights"]
    with pytest.raises(AssetError, match=r"missing key\(s\) \['weights'\]"):
        read_flame_model(_write(tmp_path / "a.pkl", d))
    with pytest.raises(AssetError, match=r"b.pkl: the pickle holds a list, not a dict"):
        read_flame_model(_write(tmp_path / "b.pkl", [1, 2]))


def test_truncated_pickle(tmp_path, flame_files):
    p = tmp_path / "generic_model.pkl"
    with open(flame_files.model, "rb") as src:
        p.write_bytes(src.read(1_000_000))
    with pytest.raises(AssetError, match=r"generic_model.pkl: not a readable FLAME model"):
        read_flame_model(p)


# ---------------------------------------------------------------------------------------------
# Unsafe pickles are refused and nothing runs
# ---------------------------------------------------------------------------------------------


class _SystemCall:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Eval:
    def __reduce__(self):
        return (eval, ("1 + 1",))


class _Popen:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.Popen, (["touch", str(self.marker)],))


def _payloads(marker):
    return {"os.system": _SystemCall(marker), "builtins.eval": _Eval(), "subprocess.Popen": _Popen(marker)}


@pytest.mark.parametrize("name", ["os.system", "builtins.eval", "subprocess.Popen"])
def test_code_execution_is_refused_in_model_pickles(tmp_path, name):
    if shutil.which("touch") is None:  # pragma: no cover
        pytest.skip("needs the touch command to make the marker meaningful")
    marker = tmp_path / "pwned"
    # sanity: the payload really would create the marker if loaded with plain pickle
    if name != "builtins.eval":
        probe = tmp_path / "probe"
        pickle.loads(pickle.dumps(_payloads(probe)[name]))
        import time

        for _ in range(50):
            if probe.exists():
                break
            time.sleep(0.02)
        assert probe.exists()
    # protocol 4 keeps the python-3 module names (protocol 2 would rename them, e.g. commands.Popen)
    p = _write(tmp_path / "generic_model.pkl", {"v_template": _payloads(marker)[name]}, protocol=4)
    module = {"os.system": "posix", "builtins.eval": "builtins", "subprocess.Popen": "subprocess"}[name]
    with pytest.raises(UnsafePickleError, match=rf"asks for '{module}\.") as err:
        read_flame_model(p)
    assert str(p) in str(err.value)
    assert not marker.exists()


def test_code_execution_is_refused_in_npy_embeddings(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "landmark_embedding.npy"
    save_npy_object(p, {"static_lmk_faces_idx": _SystemCall(marker)}, protocol=4)
    with pytest.raises(UnsafePickleError, match="posix.system"):
        read_landmark_embedding(p, None, 9976)
    assert not marker.exists()


def test_code_execution_is_refused_inside_embedded_torch_storage(tmp_path):
    """A tensor's storage bytes are a nested pickle; a global there is refused too."""
    from sfray.head.flame_tensors import load_legacy_storage

    marker = tmp_path / "pwned"
    evil = pickle.dumps(_SystemCall(marker), protocol=2)
    with pytest.raises(UnsafePickleError):
        load_legacy_storage(evil)
    legacy_prefix = b"".join(pickle.dumps(x, protocol=2) for x in
                             (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}))
    with pytest.raises(UnsafePickleError, match="posix.system"):
        load_legacy_storage(legacy_prefix + evil)
    assert not marker.exists()
