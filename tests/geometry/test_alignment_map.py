"""The alignment map: folding the authors' MLP, sfray's own format, and refusing bad files."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from sfray.errors import AssetError, UnsafePickleError
from sfray.geometry.alignment_map import (
    AlignmentMap,
    fold_linear_pair,
    load_alignment_map,
    save_alignment_map,
)
from sfray.geometry.transform import similarity_matrix


class MLP(nn.Module):
    """The layout of the authors' alignment MLP (train_alignment_mlp.py): fc1, fc2 and an unused bn1."""

    def __init__(self, hidden: int = 4):
        super().__init__()
        self.fc1 = nn.Linear(3, hidden)
        self.fc2 = nn.Linear(hidden, 3)
        self.bn1 = nn.BatchNorm1d(hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x))


def _mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    net = MLP()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return net


def _points() -> torch.Tensor:
    return torch.randn(50, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def _check_equal(amap: AlignmentMap, net: nn.Module) -> None:
    x = _points()
    with torch.no_grad():
        want = net.double()(x)
    assert torch.allclose(amap.apply(x), want, atol=1e-6)


def test_fold_linear_pair_matches_composition():
    w1, b1, w2, b2 = torch.randn(4, 3), torch.randn(4), torch.randn(3, 4), torch.randn(3)
    lin, off = fold_linear_pair(w1, b1, w2, b2)
    x = torch.randn(7, 3)
    want = (x @ w1.T + b1) @ w2.T + b2
    assert torch.allclose((x.double() @ lin.T + off).float(), want, atol=1e-5)


def test_authors_state_dict_loads_and_equals_folded_affine(tmp_path):
    net = _mlp()
    path = tmp_path / "fixMapMLP01.pth"
    torch.save(net.state_dict(), path)
    amap = load_alignment_map(path)
    assert isinstance(amap, AlignmentMap) and amap.base == "synthforge"
    _check_equal(amap, net)


def test_authors_pickled_module_loads_without_running_its_class(tmp_path, monkeypatch):
    """The release saved the whole module (torch.save(best_model)): read it via inert stand-ins."""
    net = _mlp(3)
    # pickle the class as the authors' script did: __main__.MLP
    monkeypatch.setattr(MLP, "__module__", "__main__")
    monkeypatch.setattr(sys.modules["__main__"], "MLP", MLP, raising=False)
    path = tmp_path / "fixMapMLP01.pth"
    torch.save(net, path)
    monkeypatch.delattr(sys.modules["__main__"], "MLP")  # the class is not importable when loading
    amap = load_alignment_map(path)
    _check_equal(amap, net)


@pytest.mark.parametrize("prefix,layers", [("", (0, 1)), ("", (0, 2)), ("module.", ("fc1", "fc2"))])
def test_plausible_layouts_accepted(tmp_path, prefix, layers):
    torch.manual_seed(5)
    l1, l2 = nn.Linear(3, 4), nn.Linear(4, 3)
    state = {f"{prefix}{layers[0]}.weight": l1.weight, f"{prefix}{layers[0]}.bias": l1.bias,
             f"{prefix}{layers[1]}.weight": l2.weight, f"{prefix}{layers[1]}.bias": l2.bias}
    path = tmp_path / "m.pth"
    torch.save({k: v.detach() for k, v in state.items()}, path)
    _check_equal(load_alignment_map(path), nn.Sequential(l1, l2))


def test_unknown_layout_lists_keys(tmp_path):
    path = tmp_path / "m.pth"
    torch.save({"encoder.weight": torch.zeros(4, 3), "decoder.weight": torch.zeros(3, 4)}, path)
    with pytest.raises(AssetError, match=r"m\.pth.*found keys \['decoder\.weight', 'encoder\.weight'\]"):
        load_alignment_map(path)


def test_wrong_layer_shapes_refused(tmp_path):
    path = tmp_path / "m.pth"
    torch.save({"fc1.weight": torch.zeros(4, 2), "fc1.bias": torch.zeros(4),
                "fc2.weight": torch.zeros(3, 4)}, path)
    with pytest.raises(AssetError, match=r"m\.pth.*expected Linear\(3, H\) then Linear\(H, 3\)"):
        load_alignment_map(path)


def _touch_marker(path: str) -> None:
    Path(path).write_text("code ran")


class _Payload:
    """Unpickling this calls _touch_marker(marker): the classic pickled-callable attack."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (_touch_marker, (self.marker,))


def test_pickled_callable_refused_before_running(tmp_path):
    marker = tmp_path / "MARKER"
    state = _mlp().state_dict()
    state["fc1.extra"] = _Payload(marker)
    path = tmp_path / "fixMapMLP01.pth"
    torch.save(state, path)
    # sanity: an unrestricted load really would run it
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()
    with pytest.raises(UnsafePickleError, match=r"fixMapMLP01\.pth.*_touch_marker.*nothing .* executed"):
        load_alignment_map(path)
    assert not marker.exists()


def test_safetensors_round_trip_and_atomic_write(tmp_path):
    m = similarity_matrix([1.0, -2.0, 0.5, 0.01, 0.02, -0.03, 1.02])
    path = save_alignment_map(AlignmentMap(m, source="test"), tmp_path / "out" / "map.safetensors",
                              info={"k": 1})
    assert sorted(p.name for p in path.parent.iterdir()) == ["map.safetensors"]  # no temp file left
    back = load_alignment_map(path)
    assert torch.equal(back.matrix, m)


def test_safetensors_of_another_kind_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2, 2)}, path)
    with pytest.raises(AssetError, match=r"weights\.safetensors.*not an sfray alignment map"):
        load_alignment_map(path)


def test_wrong_shape_matrix_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "bad.safetensors"
    save_file({"matrix": torch.eye(3, dtype=torch.float64)}, path,
              metadata={"format": "sfray-alignment-map"})
    with pytest.raises(AssetError, match=r"bad\.safetensors.*4x4.*\(3, 3\)"):
        load_alignment_map(path)


def test_unknown_file_kind_and_missing_file(tmp_path):
    path = tmp_path / "map.txt"
    path.write_text("1 0 0 0\n")
    with pytest.raises(AssetError, match=r"map\.txt.*unknown alignment map format"):
        load_alignment_map(path)
    with pytest.raises(AssetError, match=r"nope\.pth.*not found.*annotate\.alignment_map"):
        load_alignment_map(tmp_path / "nope.pth")


def test_identity_by_default_and_apply_composes():
    ident = load_alignment_map(None)
    x = _points()
    assert ident.is_identity and torch.equal(ident.apply(x), x)
    a = AlignmentMap(similarity_matrix([3, 0, 0, 0.1, 0, 0, 1.1]))
    b = AlignmentMap(similarity_matrix([0, 2, 0, 0, -0.1, 0, 0.9]))
    assert torch.allclose(a.then(b).apply(x), b.apply(a.apply(x)))
    assert torch.allclose(a.inverse().apply(a.apply(x)), x, atol=1e-12)


def test_authors_map_composes_with_the_release_transform(tmp_path):
    """fixMapMLP01.pth was fitted on the release's annotation transform, not on Next3D's own
    geometry: the annotator must compose it with extras['mesh_to_world_synthforge']."""
    from types import SimpleNamespace

    from sfray.annotate.annotator import Annotator
    from sfray.conventions import Extra
    from sfray.geometry.alignment_map import load_alignment_map, save_alignment_map

    path = tmp_path / "fixMapMLP01.pth"
    torch.save(_mlp(3).state_dict(), path)
    authors = load_alignment_map(path)
    assert authors.base == "synthforge"
    ours = tmp_path / "ours.safetensors"
    save_alignment_map(authors, ours)
    assert load_alignment_map(ours).base == "synthforge", "the base survives sfray's own format"

    network = torch.eye(4).unsqueeze(0)
    release = torch.eye(4).unsqueeze(0).clone()
    release[0, 1, 3] = -0.05  # the release sits 0.05 world units lower than the network
    out = SimpleNamespace(mesh_to_world=network, extras={Extra.MESH_TO_WORLD_SYNTHFORGE: release})
    fake = SimpleNamespace(alignment=authors)
    got = Annotator.world_transform(fake, out)
    assert torch.allclose(got[0], authors.matrix @ release[0].double())
    fake.alignment = AlignmentMap.identity()  # a map fitted by `sfray align` uses the generator's own
    assert torch.allclose(Annotator.world_transform(fake, out)[0], network[0].double())
