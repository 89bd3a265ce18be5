"""Official-format pickles: written from a small model, read back without executing anything."""

from __future__ import annotations

import copy
import io
import pickle

import pytest
import torch

from sfray.errors import AssetError, UnsafePickleError
from sfray.generators.next3d.checkpoint import compare_state, convert_checkpoint, load_next3d, read_checkpoint
from sfray.generators.next3d.layers import seeded_generators
from sfray.generators.next3d.official_pickle import PersistentRecord, read_official_pickle, walk_modules
from .official_writer import write_official_pickle

from .conftest import frontal_label


def trace_source(trace):
    """module_src that leaves a file behind if anyone executes it."""
    return lambda module: f"# {module}\nimport pathlib\npathlib.Path({str(trace)!r}).write_text('executed')\n"


@pytest.fixture(scope="module")
def pickled(tmp_path_factory, small_model):
    d = tmp_path_factory.mktemp("ckpt")
    trace = d / "TRACE"
    path = write_official_pickle(small_model, d / "next3d_small.pkl", trace_source(trace),
                                 dataset_label_std=torch.rand(31))
    return path, trace


def render(model, head):
    v, lms = head.vertices(torch.tensor([0.3, 0.8]))
    z = torch.randn(2, model.cfg.z_dim, generator=torch.Generator().manual_seed(7))
    c = frontal_label(2)
    return model(z, c, c, torch.cat([v, lms], 1), 0.7, 14, "const", seeded_generators([11, 12], "cpu"))


def test_loader_reproduces_the_model_without_executing_code(pickled, small_model, synthetic_head):
    path, trace = pickled
    model, ckpt = load_next3d(path)
    assert not trace.exists()
    assert ckpt.kind == "official-pkl" and ckpt.identity.startswith("next3d:")
    assert ckpt.rendering_kwargs == small_model.rendering_kwargs
    assert model.cfg == small_model.cfg
    ref, got = render(small_model, synthetic_head), render(model, synthetic_head)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    # the trace mechanism is real: running the stored source (which the loader never does) leaves it
    src = ckpt.record.module_src
    assert "write_text" in src
    exec(compile(src, "<module_src>", "exec"), {})  # noqa: S102 - deliberately, to prove the trace works
    assert trace.exists()
    trace.unlink()


def test_record_structure(pickled):
    path, _ = pickled
    top = read_official_pickle(path)
    assert list(top) == ["training_set_kwargs", "G", "D", "G_ema", "augment_pipe"]
    assert top["augment_pipe"] is None and top["training_set_kwargs"]["use_labels"] is True
    g = top["G_ema"]
    assert isinstance(g, PersistentRecord) and g.class_name == "TriPlaneGenerator" and g.version == 6
    classes = {p: getattr(m, "class_name", None) for p, m in walk_modules(g)}
    assert classes["decoder"] == "OSGDecoder" and classes["renderer.ray_marcher"] == "MipRayMarcher2"
    assert classes["mouth_backbone.synthesis.encoder.0"] == "EncoderResBlock"
    assert classes["decoder.net"] == "Sequential" and classes["ray_sampler"] == "RaySampler"
    ckpt = read_checkpoint(path)
    assert "dataset_label_std" in ckpt.tensors and ckpt.attrs["renderer.plane_axes"].shape == (3, 3, 3)


def test_safetensors_round_trip(pickled, small_model, synthetic_head, tmp_path):
    path, trace = pickled
    out, ckpt, report = convert_checkpoint(path, tmp_path / "small.safetensors")
    assert report.ok and report.ignored_extras == ["dataset_label_std"]
    model, st = load_next3d(out)
    assert st.kind == "sfray-safetensors" and st.identity == ckpt.identity  # provenance kept
    assert "dataset_label_std" in st.tensors
    ref, got = render(small_model, synthetic_head), render(model, synthetic_head)
    for k in ref:
        assert torch.equal(ref[k], got[k]), k
    assert not trace.exists() and not list(tmp_path.glob(".*tmp*"))


def test_wrong_shape_names_the_first_mismatch(tmp_path, small_model):
    bad = copy.deepcopy(small_model)
    w = bad.backbone.synthesis.b16.conv0.weight
    bad.backbone.synthesis.b16.conv0.weight = torch.nn.Parameter(torch.zeros(w.shape[0], w.shape[1] + 1, 3, 3))
    path = write_official_pickle(bad, tmp_path / "bad.pkl", trace_source(tmp_path / "T"))
    with pytest.raises(AssetError, match=r"'backbone\.synthesis\.b16\.conv0\.weight' has shape"):
        load_next3d(path)


def test_missing_and_unexpected_report_everything(small_model):
    sd = dict(small_model.state_dict())
    found = {k: v for k, v in sd.items() if k != "decoder.net.0.bias"}
    found["bogus.weight"] = torch.zeros(1)
    found["dataset_label_std"] = torch.zeros(3)
    rep = compare_state(sd, found)
    assert rep.missing == ["decoder.net.0.bias"] and rep.unexpected == ["bogus.weight"]
    assert rep.ignored_extras == ["dataset_label_std"] and not rep.ok
    assert rep.first.startswith("missing tensor 'decoder.net.0.bias'")


def test_not_a_next3d_pickle(tmp_path, small_model):
    p = tmp_path / "plain.pkl"
    p.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    with pytest.raises(AssetError, match="not a Next3D network pickle"):
        load_next3d(p)
    eg3d_like = copy.deepcopy(small_model)
    for name in ("texture_backbone", "mouth_backbone", "neural_blending"):
        delattr(eg3d_like, name)
    q = write_official_pickle(eg3d_like, tmp_path / "eg3d.pkl", trace_source(tmp_path / "T"))
    with pytest.raises(AssetError, match="not a Next3D generator.*EG3D"):
        load_next3d(q)


def test_truncated_file(pickled, tmp_path):
    path, trace = pickled
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(AssetError, match="cut.pkl"):
        load_next3d(cut)
    empty = tmp_path / "empty.pkl"
    empty.write_bytes(b"")
    with pytest.raises(AssetError):
        load_next3d(empty)
    assert not trace.exists()


def test_disallowed_global_is_refused(tmp_path):
    marker = tmp_path / "PWNED"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    p = tmp_path / "evil.pkl"
    p.write_bytes(pickle.dumps({"G_ema": Evil()}, protocol=4))
    with pytest.raises(UnsafePickleError, match="os|posix"):
        load_next3d(p)
    assert not marker.exists()
    # builtins are refused too, even under a project-looking prefix they only become inert stubs
    buf = io.BytesIO()
    pickle.Pickler(buf, protocol=4).dump(eval)
    with pytest.raises(UnsafePickleError):
        read_official_pickle(buf.getvalue())


def test_safetensors_metadata_is_required(tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(p), metadata={"format": "something-else"})
    with pytest.raises(AssetError, match="not an sfray Next3D checkpoint"):
        load_next3d(p)
