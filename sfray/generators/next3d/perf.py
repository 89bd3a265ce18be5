"""Speed and precision settings of the Next3D network: what ``generator.next3d.precision``, ``compile`` and
``cuda_graphs`` mean, the per-device fast paths, and the batch size that fits in GPU memory.

* :func:`tf32_scope`: ``fp32`` (and the fp32 islands of ``bf16``/``fp16``) runs with TF32 off for
  matmuls and cuDNN convolutions; ``tf32`` turns it on. The previous global setting is restored
  on exit, so the generator never changes the process's numerics behind the caller's back.
* :func:`apply_fast_paths`: the fast forms of ``fastops.py`` and channels-last weights
  (:func:`default_fast_paths`: on for CUDA; on CPU the reference ops, which measured as fast
  there -- ``bench/next3d.py --paths ref fast`` measures both).
* :func:`compile_networks`: opt-in ``torch.compile`` of the convolutional networks and the
  volume renderer + super-resolution (the rasterization, hole filling and mouth crops stay eager).
* :class:`CudaGraphs`: opt-in CUDA-graph capture of the same pieces for a fixed batch (the
  launch overhead of ~1500 small kernels per sample otherwise dominates at small batches).
* :func:`batch_from_footprint` / ``Next3DGenerator.fit_batch_size``: the largest batch whose
  measured footprint fits in free GPU memory; CPU keeps the configured batch.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from sfray.config import registries as reg
from sfray.generators.next3d.fastops import separable_taps
from sfray.generators.next3d.layers import FastPathMixin

log = logging.getLogger(__name__)

#: generator.next3d.precision -> autocast dtype (None: no autocast) and whether TF32 may be used.
PRECISIONS = reg.PRECISIONS
for _name, _value in {"fp32": (None, False), "tf32": (None, True), "bf16": (torch.bfloat16, False),
                      "fp16": (torch.float16, False)}.items():
    PRECISIONS.add(_name, _value)


def check_precision(precision: str) -> None:
    PRECISIONS.check(precision)


@contextlib.contextmanager
def tf32_scope(allow: bool) -> Iterator[None]:
    """TF32 for CUDA matmuls and cuDNN convolutions on (``allow``) or off inside; restored after."""
    mm, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(mm, "fp32_precision") and hasattr(conv, "conv"):  # torch >= 2.9: per-op precision strings
        saved = (mm.fp32_precision, conv.conv.fp32_precision)
        mode = "tf32" if allow else "ieee"
        mm.fp32_precision = conv.conv.fp32_precision = mode
        try:
            yield
        finally:
            mm.fp32_precision, conv.conv.fp32_precision = saved
    else:  # older torch: the boolean flags
        saved_b = (mm.allow_tf32, conv.allow_tf32)
        mm.allow_tf32 = conv.allow_tf32 = allow
        try:
            yield
        finally:
            mm.allow_tf32, conv.allow_tf32 = saved_b


@dataclass(frozen=True)
class FastPaths:
    """Which fast forms the network uses (``fastops.py``); all False = the reference ops."""

    fast_ops: bool = False
    channels_last: bool = False


def default_fast_paths(device: torch.device | str) -> FastPaths:
    """CUDA: fast ops + channels-last (cuDNN's NHWC tensor-core kernels); CPU: the reference ops."""
    return FastPaths(True, True) if torch.device(device).type == "cuda" else FastPaths()


def apply_fast_paths(model: torch.nn.Module, paths: FastPaths) -> None:
    """Switch every layer of ``model`` to ``paths`` (weights to channels-last when asked).

    The separable taps of each ``resample_filter`` are read once here (a filter that is not an
    outer product keeps the depthwise reference FIR).
    """
    for m in model.modules():
        if isinstance(m, FastPathMixin):
            m.fast, m.channels_last = paths.fast_ops, paths.channels_last
            f = getattr(m, "resample_filter", None)
            m.fir_taps = separable_taps(f) if (paths.fast_ops and f is not None) else None
    fmt = torch.channels_last if paths.channels_last else torch.contiguous_format
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 4:
                p.data = p.data.contiguous(memory_format=fmt)


#: The pure-tensor pieces that :func:`compile_networks` and :class:`CudaGraphs` accelerate.
NETWORKS = ("texture", "static", "mouth", "blend", "render")


def compile_networks(model: Any) -> None:
    """torch.compile (static shapes) of the four StyleGAN2 synthesis networks and of the renderer +
    super-resolution. The first call per batch size compiles (tens of seconds on a GPU)."""
    for name in ("texture_backbone", "backbone", "mouth_backbone", "neural_blending"):
        getattr(model, name).synthesis.compile(dynamic=False)
    model._render_core = torch.compile(model._render_core, dynamic=False)


class CudaGraphs:
    """Capture ``fn(*tensors)`` as a CUDA graph per input signature and replay it afterwards.

    A signature is the name, the tensors' shapes/dtypes/devices, the non-tensor arguments and the
    autocast state, so a fixed batch captures once per piece. Inputs are copied into the graph's
    static buffers; outputs are cloned right after each replay. All graphs share one memory pool
    (intermediates of one piece reuse another's), which is safe because graphs never run
    concurrently and no static output is read after another replay. Pieces must not draw random
    numbers from per-sample generators (the callers pre-draw them) nor synchronise with the host.
    """

    def __init__(self, warmup: int = 2):
        self.warmup = warmup
        self.pool = torch.cuda.graph_pool_handle()
        self._graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, list[torch.Tensor], Any]] = {}

    @staticmethod
    def _key(name: str, args: tuple) -> tuple:
        sig = tuple((tuple(a.shape), a.dtype, str(a.device)) if isinstance(a, torch.Tensor) else a for a in args)
        return (name, sig, torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))

    def __call__(self, name: str, fn: Callable[..., Any], *args: Any) -> Any:
        key = self._key(name, args)
        if key not in self._graphs:
            self._graphs[key] = self._capture(fn, args)
        graph, static_in, static_out = self._graphs[key]
        for buf, a in zip(static_in, (a for a in args if isinstance(a, torch.Tensor))):
            buf.copy_(a)
        graph.replay()
        return _map_tensors(static_out, torch.clone)

    def _capture(self, fn: Callable[..., Any], args: tuple) -> tuple:
        static_in = [a.clone() for a in args if isinstance(a, torch.Tensor)]
        it = iter(static_in)
        call_args = [next(it) if isinstance(a, torch.Tensor) else a for a in args]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.warmup):  # allocator, cuDNN autotuning and lazy inits happen here
                fn(*call_args)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            static_out = fn(*call_args)
        return graph, static_in, static_out


def _map_tensors(x: Any, fn: Callable[[torch.Tensor], torch.Tensor]) -> Any:
    if isinstance(x, torch.Tensor):
        return fn(x)
    if isinstance(x, dict):
        return {k: _map_tensors(v, fn) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_map_tensors(v, fn) for v in x)
    return x


def batch_from_footprint(free_bytes: int, fixed_bytes: int, per_sample_bytes: int, *, fraction: float = 0.85,
                         limit: int = 256) -> int:
    """Largest batch b <= limit with fixed + b·per_sample <= fraction·free (at least 1)."""
    if per_sample_bytes <= 0:
        return limit
    return int(max(1, min(limit, (fraction * free_bytes - fixed_bytes) // per_sample_bytes)))
