"""HeadModel (FLAME layer) against an independent NumPy reference, plus its basic contracts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sfray.errors import ConfigError, SfrayError
from sfray.head.layer import HeadModel, batch_rodrigues, dynamic_contour_rows, lbs, regress_joints
from sfray.train.context import torch_threads

# ---------------------------------------------------------------------------------------------
# Independent reference: written from the FLAME paper's equations, loops over joints and vertices
# ---------------------------------------------------------------------------------------------


def np_rodrigues(r: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(r)
    if angle == 0.0:
        return np.eye(3)
    k = r / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def np_flame(t, shape: np.ndarray, expr: np.ndarray, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One sample: shape (300,), expr (100,), pose (15,) -> posed vertices (V, 3), joints (J, 3)."""
    v_shaped = t.v_template + t.shapedirs[:, :, :300] @ shape + t.shapedirs[:, :, 300:] @ expr
    joints = t.j_regressor @ v_shaped
    rots = [np_rodrigues(pose[3 * j: 3 * j + 3]) for j in range(5)]
    v_posed = v_shaped.copy()
    for j in range(1, 5):
        feat = (rots[j] - np.eye(3)).reshape(-1)
        v_posed += t.posedirs[:, :, 9 * (j - 1): 9 * j] @ feat
    world = []
    for j in range(5):
        m = np.eye(4)
        m[:3, :3] = rots[j]
        p = t.parents[j]
        m[:3, 3] = joints[j] - (joints[p] if p >= 0 else 0.0)
        world.append(m if p < 0 else world[p] @ m)
    out = np.zeros_like(v_posed)
    for j in range(5):
        g = world[j]
        moved = (v_posed - joints[j]) @ g[:3, :3].T + g[:3, 3]  # rotate about the rest joint, then place
        out += t.weights[:, j: j + 1] * moved
    return out, np.stack([w[:3, 3] for w in world])


def np_bary(verts: np.ndarray, faces: np.ndarray, fidx: np.ndarray, bary: np.ndarray) -> np.ndarray:
    return np.einsum("lkc,lk->lc", verts[faces[fidx]], bary)


def random_params(seed: int, b: int, pose_scale: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    def rand(k: int) -> torch.Tensor:
        return torch.randn(b, k, generator=g, dtype=torch.float64)

    return rand(300), rand(100), rand(15) * pose_scale


# ---------------------------------------------------------------------------------------------


def test_zero_parameters_give_the_template(flame_head, flame_files):
    t = flame_files.truth
    out = flame_head()
    assert out.vertices.shape == (1, 5023, 3) and out.vertices.dtype == torch.float64
    np.testing.assert_allclose(out.vertices[0].numpy(), t.v_template, rtol=0, atol=1e-15)
    np.testing.assert_allclose(out.joints[0].numpy(), t.j_regressor @ t.v_template, atol=1e-15)
    # landmarks: contour of row 0 (zero yaw) + static, and the fixed 68
    want = np.concatenate([np_bary(t.v_template, t.faces, t.dynamic_faces[0], t.dynamic_bary[0]),
                           np_bary(t.v_template, t.faces, t.static_faces, t.static_bary)])
    np.testing.assert_allclose(out.landmarks[0].numpy(), want, atol=1e-7)  # DECA stores these bary as float32
    np.testing.assert_allclose(out.landmarks_fixed[0].numpy(),
                               np_bary(t.v_template, t.faces, t.full_faces, t.full_bary), atol=1e-15)


def test_float64_matches_independent_numpy_reference(flame_head, flame_files):
    t = flame_files.truth
    shape, expr, pose = random_params(1, 3)
    out = flame_head(shape, expr, pose)
    for i in range(3):
        v_ref, j_ref = np_flame(t, shape[i].numpy(), expr[i].numpy(), pose[i].numpy())
        np.testing.assert_allclose(out.vertices[i].numpy(), v_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(out.joints[i].numpy(), j_ref, rtol=0, atol=1e-10)
        np.testing.assert_allclose(out.landmarks_fixed[i].numpy(),
                                   np_bary(v_ref, t.faces, t.full_faces, t.full_bary), atol=1e-10)


def test_jaw_rotation_moves_only_jaw_weighted_vertices(flame_head, flame_files):
    t = flame_files.truth
    pose = torch.zeros(1, 15, dtype=torch.float64)
    pose[0, 6] = 0.3  # jaw opens about x
    moved = flame_head(pose=pose).vertices[0].numpy() - flame_head().vertices[0].numpy()
    dist = np.linalg.norm(moved, axis=1)
    jaw = t.weights[:, 2] > 0
    assert jaw.sum() > 100
    assert np.all(dist[~jaw] == 0.0)
    assert np.all(dist[jaw] > 1e-6)


def test_batched_equals_per_sample(flame_head):
    shape, expr, pose = random_params(2, 4)
    full = flame_head(shape, expr, pose)
    for i in range(4):
        one = flame_head(shape[i: i + 1], expr[i: i + 1], pose[i: i + 1])
        for name in ("vertices", "landmarks", "landmarks_fixed", "joints"):
            torch.testing.assert_close(getattr(full, name)[i: i + 1], getattr(one, name), rtol=0, atol=1e-13)


def test_short_inputs_are_zero_padded_and_long_ones_refused(flame_assets):
    head = HeadModel(flame_assets, n_shape=20, n_expression=10, dtype=torch.float64)
    assert head.n_shape == 20 and head.n_expression == 10
    short = torch.randn(2, 5, dtype=torch.float64)
    padded = torch.cat([short, torch.zeros(2, 15, dtype=torch.float64)], dim=1)
    torch.testing.assert_close(head(shape=short).vertices, head(shape=padded).vertices, rtol=0, atol=0)
    # the unused components really are unused
    torch.testing.assert_close(head(shape=padded).vertices, head(shape=padded[:, :20]).vertices)
    with pytest.raises(ConfigError, match=r"shape: got 21 coefficients .* uses 20"):
        head(shape=torch.zeros(2, 21))
    with pytest.raises(SfrayError, match="expression"):
        head(expression=torch.zeros(2, 11))
    with pytest.raises(SfrayError, match="pose"):
        head(pose=torch.zeros(2, 16))
    with pytest.raises(ConfigError, match="B=2"):
        head(shape=torch.zeros(2, 3), expression=torch.zeros(3, 3))
    with pytest.raises(ConfigError, match="head.n_shape=301"):
        HeadModel(flame_assets, n_shape=301)


def test_float32_agrees_with_float64_and_inputs_are_cast(flame_assets, flame_head):
    head32 = HeadModel(flame_assets, dtype="float32")
    shape, expr, pose = random_params(3, 2)
    out32 = head32(shape, expr, pose)  # float64 inputs are cast to the model dtype
    assert out32.vertices.dtype == torch.float32
    out64 = flame_head(shape, expr, pose)
    torch.testing.assert_close(out32.vertices.double(), out64.vertices, rtol=0, atol=2e-5)
    torch.testing.assert_close(out32.landmarks.double(), out64.landmarks, rtol=0, atol=2e-5)


def test_gradients_are_finite_at_zero_pose(flame_head):
    pose = torch.zeros(2, 15, dtype=torch.float64, requires_grad=True)
    shape = torch.zeros(2, 10, dtype=torch.float64, requires_grad=True)
    out = flame_head(shape=shape, pose=pose)
    (out.vertices.square().sum() + out.landmarks.sum()).backward()
    assert torch.isfinite(pose.grad).all() and torch.isfinite(shape.grad).all()
    assert pose.grad.abs().sum() > 0 and shape.grad.abs().sum() > 0


def test_rodrigues_matches_reference_and_is_exact_at_zero():
    g = torch.Generator().manual_seed(4)
    r = torch.randn(64, 3, generator=g, dtype=torch.float64)
    r[:4] = 0.0
    r[4:8] *= 1e-6  # the small-angle branch
    got = batch_rodrigues(r).numpy()
    want = np.stack([np_rodrigues(x) for x in r.numpy()])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    assert np.array_equal(got[:4], np.broadcast_to(np.eye(3), (4, 3, 3)))


def test_contour_row_convention():
    yaw = torch.tensor([0.0, 0.4, 0.6, 20.0, 39.0, 60.0, -0.6, -1.0, -20.0, -39.0, -60.0])
    assert dynamic_contour_rows(yaw).tolist() == [0, 0, 1, 20, 39, 39, 40, 40, 59, 78, 78]


def test_lbs_function_is_exposed(flame_head):
    b = 2
    betas = torch.zeros(b, flame_head.blenddirs.shape[0], dtype=torch.float64)
    v, j = lbs(betas, torch.zeros(b, 15, dtype=torch.float64), flame_head.v_template, flame_head.blenddirs,
               flame_head.posedirs, flame_head.j_regressor, flame_head.parents_list, flame_head.lbs_weights)
    torch.testing.assert_close(v, flame_head.v_template.expand(b, -1, -1), rtol=0, atol=1e-15)
    assert j.shape == (b, 5, 3)


def test_joint_regression_is_correctly_rounded_whatever_the_thread_count():
    # a long reduction into few outputs: the shape a BLAS splits across threads
    g = torch.Generator().manual_seed(3)
    w = torch.rand(5, 6001, generator=g)
    w[:, ::3] = 0.0  # vertices no joint weighs, as in a real regressor
    w = w / w.sum(1, keepdim=True)
    v = torch.randn(4, 6001, 3, generator=g)
    runs = []
    for n in (1, 2, 3):
        with torch_threads(n):
            runs.append(regress_joints(w, v))
    assert runs[0].dtype == torch.float32 and runs[0].shape == (4, 5, 3)
    assert all(torch.equal(runs[0], r) for r in runs[1:])
    # float64 accumulation rounded once: within half a float32 ulp of the exact sum
    exact = torch.einsum("jv,bvc->bjc", w.double(), v.double())
    assert bool(((runs[0].double() - exact).abs() <= exact.abs() * 2.0 ** -24 + 1e-15).all())
    # float64 vertices stay float64, and agree with the plain product
    torch.testing.assert_close(regress_joints(w.double(), v.double()), exact, rtol=1e-13, atol=1e-15)


def test_attributes_and_summary(flame_head, flame_files):
    h = flame_head
    assert (h.kind, h.num_vertices, h.num_faces) == ("flame", 5023, 9976)
    assert h.faces.dtype == torch.long and h.faces.shape == (9976, 3)
    assert h.uv_coords.shape == (5118, 2) and h.uv_faces.shape == (9976, 3)
    assert h.uv_label_map.dtype == torch.uint8 and h.uv_label_map.dim() == 2
    assert h.joint_names == ("global", "neck", "jaw", "left_eye", "right_eye")
    assert h.parents.tolist() == [-1, 0, 1, 1, 1]
    assert set(h.vertex_regions) == set(flame_files.truth.regions)
    s = h.summary()
    assert s["vertices"] == 5023 and s["faces"] == 9976 and s["uv_vertices"] == 5118
    assert s["parameters"] == {"shape": 300, "shape_available": 300, "expression": 100,
                               "expression_available": 100, "pose": 15}
    assert s["landmarks"]["count"] == 68 and s["landmarks"]["dynamic_rows"] == 79
    assert abs(sum(r["share"] for r in s["label_map"]["regions"]) - 1.0) < 1e-9


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(flame_assets, flame_head):
    head = HeadModel(flame_assets, dtype=torch.float64).to("cuda")
    shape, expr, pose = random_params(5, 3)
    out = head(shape.cuda(), expr.cuda(), pose.cuda())
    ref = flame_head(shape, expr, pose)
    torch.testing.assert_close(out.vertices.cpu(), ref.vertices, rtol=0, atol=1e-10)
    torch.testing.assert_close(out.landmarks.cpu(), ref.landmarks, rtol=0, atol=1e-10)
