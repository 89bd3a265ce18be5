"""StyleGAN2 layers against explicit per-sample references (docs/next3d.md §6.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import signal

from sfray.generators.next3d.layers import (
    FullyConnectedLayer,
    SynthesisLayer,
    ToRGBLayer,
    bias_act,
    modulated_conv2d,
    seeded_generators,
)
from sfray.generators.next3d.stylegan2 import MappingNetwork, SynthesisNetwork


def explicit_modconv(x: np.ndarray, w: np.ndarray, s: np.ndarray, demodulate: bool) -> np.ndarray:
    """Loop over samples / output / input channels with scipy correlation ('same' padding for 3x3)."""
    b, i_ch, h, wd = x.shape
    o_ch = w.shape[0]
    out = np.zeros((b, o_ch, h, wd))
    for bi in range(b):
        wm = w * s[bi][None, :, None, None]
        if demodulate:
            wm = wm / np.sqrt((wm ** 2).sum(axis=(1, 2, 3), keepdims=True) + 1e-8)
        for o in range(o_ch):
            for i in range(i_ch):
                out[bi, o] += signal.correlate2d(x[bi, i], wm[o, i], mode="same")
    return out


@pytest.mark.parametrize("demodulate", [True, False])
def test_modulated_conv_matches_per_sample_loop(demodulate):
    rng = np.random.default_rng(0)
    x, w, s = rng.standard_normal((3, 4, 6, 5)), rng.standard_normal((5, 4, 3, 3)), rng.standard_normal((3, 4))
    got = modulated_conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(s),
                           demodulate=demodulate, padding=1).numpy()
    np.testing.assert_allclose(got, explicit_modconv(x, w, s, demodulate), atol=1e-10)


def test_demodulated_output_is_invariant_to_style_scale():
    """Demodulation: scaling a sample's styles by a constant leaves its output unchanged."""
    torch.manual_seed(0)
    layer = SynthesisLayer(4, 6, w_dim=8, resolution=8).double()
    x = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    w = torch.randn(2, 8, dtype=torch.float64)
    y1 = layer(x, w, noise_mode="none")
    with torch.no_grad():
        layer.affine.weight.mul_(3.0)
        layer.affine.bias.mul_(3.0)
    torch.testing.assert_close(layer(x, w, noise_mode="none"), y1)


def test_fc_weight_gain_and_lr_multiplier():
    torch.manual_seed(0)
    fc = FullyConnectedLayer(8, 3, activation="lrelu", lr_multiplier=0.01, bias_init=0.5)
    x = torch.randn(4, 8)
    pre = x @ (fc.weight * 0.01 / math.sqrt(8)).T + fc.bias * 0.01
    ref = torch.nn.functional.leaky_relu(pre, 0.2) * math.sqrt(2)
    torch.testing.assert_close(fc(x), ref)
    assert torch.allclose(fc.bias * fc.bias_gain, torch.full((3,), 0.005))  # stored unscaled


def test_bias_act_gain_then_clamp():
    x = torch.tensor([[-10.0, 1.0, 300.0]]).reshape(1, 3, 1, 1)
    y = bias_act(x, torch.zeros(3), "lrelu", clamp=256.0)
    expected = torch.tensor([-10 * 0.2 * math.sqrt(2), math.sqrt(2), 256.0])
    torch.testing.assert_close(y.reshape(-1), expected)


def test_torgb_is_not_demodulated_and_scales_styles():
    torch.manual_seed(0)
    layer = ToRGBLayer(4, 3, w_dim=6).double()
    x, w = torch.randn(2, 4, 5, 5, dtype=torch.float64), torch.randn(2, 6, dtype=torch.float64)
    s = layer.affine(w) / 2.0  # 1/sqrt(in=4)
    ref = torch.einsum("oi,bihw->bohw", layer.weight[:, :, 0, 0], x * s[:, :, None, None])
    torch.testing.assert_close(layer(x, w), ref + layer.bias[None, :, None, None])


def test_noise_modes():
    torch.manual_seed(0)
    layer = SynthesisLayer(2, 2, w_dim=4, resolution=8)
    with torch.no_grad():
        layer.noise_strength.fill_(0.5)
    x, w = torch.randn(2, 2, 8, 8), torch.randn(2, 4)
    const1, const2 = layer(x, w, "const"), layer(x, w, "const")
    none = layer(x, w, "none")
    assert torch.equal(const1, const2) and not torch.allclose(const1, none)
    r1 = layer(x, w, "random", rng=seeded_generators([5, 6], "cpu"))
    r2 = layer(x, w, "random", rng=seeded_generators([5, 6], "cpu"))
    r3 = layer(x, w, "random", rng=seeded_generators([5, 7], "cpu"))
    assert torch.equal(r1, r2) and torch.equal(r1[0], r3[0]) and not torch.allclose(r1[1], r3[1])
    with pytest.raises(ValueError):
        layer(x, w, "bogus")


def test_mapping_truncation_cutoff_and_normalisation():
    torch.manual_seed(0)
    m = MappingNetwork(z_dim=8, c_dim=25, w_dim=6, num_ws=10)
    with torch.no_grad():
        m.w_avg.copy_(torch.randn(6))
    z, c = torch.randn(3, 8), torch.randn(3, 25)
    full = m(z, c)
    assert full.shape == (3, 10, 6) and torch.allclose(full, full[:, :1].expand_as(full))
    t = m(z, c, truncation_psi=0.7, truncation_cutoff=4)
    torch.testing.assert_close(t[:, :4], m.w_avg + 0.7 * (full[:, :4] - m.w_avg))
    assert torch.equal(t[:, 4:], full[:, 4:])  # beyond the cutoff (Next3D's texture half) untouched
    torch.testing.assert_close(m(3.0 * z, c), full)  # z is normalised to unit second moment


def test_synthesis_block_ws_slices():
    """Block k consumes ws[2k-1 .. 2k+1]: changing ws[i] must not change blocks that do not use it."""
    torch.manual_seed(0)
    net = SynthesisNetwork(w_dim=4, img_resolution=16, img_channels=2, channel_base=64, channel_max=8)
    assert net.num_ws == 6
    ws = torch.randn(1, 6, 4)
    base = net(ws, noise_mode="none")
    ws2 = ws.clone()
    ws2[:, 5] += 1.0  # only the last block's to-RGB
    out = net(ws2, noise_mode="none")
    # the last to-RGB is a 1x1 conv added to the upsampled image: only that term changes
    blocks = net.blocks()
    x = img = None
    from sfray.generators.next3d.stylegan2 import split_ws
    for blk, bws in zip(blocks, split_ws(ws, blocks)):
        x, img = blk(x, img, bws, noise_mode="none")
    delta = blocks[-1].torgb(x, ws2[:, 5]) - blocks[-1].torgb(x, ws[:, 5])
    torch.testing.assert_close(out - base, delta)
