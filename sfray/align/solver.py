"""Robust Levenberg-Marquardt over the alignment residuals (global map or per-sample residuals).

One outer iteration = rasterize under the current maps and fix correspondences
(:func:`sfray.align.residuals.match`), then one damped Gauss-Newton step with iteratively
reweighted least squares for the robust loss, retried with more damping until the cost (on those
correspondences) decreases. Parameters are grouped: ``groups[i]`` says which map sample ``i``
uses, so the same code fits one global map (all zeros) or one small residual per sample
(``arange(B)``) with the normal equations simply growing block-diagonal.

Each term is normalised per group by its number of points, so a term's weight means the same
whatever the resolution or the number of samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor
from torch.func import jacfwd

from sfray.align.model import N_PARAMS, clamp_theta, delta_matrix
from sfray.align.observe import FitBatch
from sfray.align.residuals import TERMS, Correspondences, match, residuals, term_groups
from sfray.config.schema import AlignLossConfig

Progress = Callable[[int, dict[str, Any]], None]


@dataclass
class Bounds:
    """Box on the per-sample residual (refinement)."""

    max_rotation_deg: float
    max_translation: float
    max_scale_change: float


@dataclass
class FitOutcome:
    maps: Tensor  # (G, 4, 4) final maps = D(theta) @ base
    theta: Tensor  # (G, P)
    history: list[dict[str, Any]] = field(default_factory=list)
    cost_first: float = float("nan")  # cost at the start (first correspondences)
    cost_last: float = float("nan")  # cost at the end (last correspondences)
    terms_first: dict[str, float] = field(default_factory=dict)
    terms_last: dict[str, float] = field(default_factory=dict)
    group_cost_first: Tensor | None = None  # (G,) cost per map group at the start
    group_cost_last: Tensor | None = None  # (G,) and at the end


def _scales(loss: AlignLossConfig) -> dict[str, float]:
    return {"depth": loss.depth_scale, "silhouette": loss.silhouette_scale,
            "chamfer": loss.chamfer_scale, "landmark": loss.landmark_scale}


def _rho_and_weight(e: Tensor, robust: str) -> tuple[Tensor, Tensor]:
    """Robust loss rho(e) and IRLS weight rho'(e)/e for normalised residual norms e >= 0."""
    if robust == "l2":
        return 0.5 * e * e, torch.ones_like(e)
    if robust == "huber":
        quad = e <= 1.0
        weight = torch.where(quad, torch.ones_like(e), 1.0 / e.clamp_min(1e-12))
        return torch.where(quad, 0.5 * e * e, e - 0.5), weight
    if robust == "cauchy":
        return 0.5 * torch.log1p(e * e), 1.0 / (1.0 + e * e)
    raise ValueError(f"unknown robust loss '{robust}'")


def _row_coefficients(corr: Correspondences, groups: Tensor, n_groups: int,
                      loss: AlignLossConfig) -> dict[str, Tensor]:
    """weight_t / (points of term t in the row's group), per residual point."""
    out = {}
    tg = term_groups(corr, groups)
    for t in TERMS:
        g = tg[t]
        n = torch.bincount(g, minlength=n_groups).to(torch.float64).clamp_min(1.0)
        out[t] = float(getattr(loss, t)) / n[g] if g.numel() else torch.zeros(0, dtype=torch.float64)
    return out


def _cost(res: dict[str, Tensor], coef: dict[str, Tensor], loss: AlignLossConfig,
          rows: dict[str, Tensor] | None = None, n_groups: int = 1) -> tuple[float, dict[str, float], Tensor]:
    """Total robust cost, its split by term, and (with ``rows``: group per point) by group (G,)."""
    scales = _scales(loss)
    total, per = 0.0, {}
    by_group = torch.zeros(n_groups, dtype=torch.float64)
    for t in TERMS:
        r = res[t]
        if r.numel() == 0 or float(getattr(loss, t)) == 0.0:
            per[t] = 0.0
            continue
        e = (r.reshape(r.shape[0], -1).norm(dim=-1)) / scales[t]
        rho, _ = _rho_and_weight(e, loss.robust)
        c = coef[t] * rho
        per[t] = float(c.sum())
        total += per[t]
        if rows is not None:
            by_group += torch.bincount(rows[t].cpu(), weights=c.detach().cpu(), minlength=n_groups)
    return total, per, by_group


def _normal_equations(theta: Tensor, fn: Callable[[Tensor], dict[str, Tensor]], coef: dict[str, Tensor],
                      loss: AlignLossConfig) -> tuple[Tensor, Tensor]:
    """Gauss-Newton H and g of the IRLS-weighted, scale-normalised residuals at theta."""
    scales = _scales(loss)
    res = fn(theta)
    active = [t for t in TERMS if float(getattr(loss, t)) > 0 and res[t].numel() > 0]

    def flat(th: Tensor) -> Tensor:
        out = fn(th)
        return torch.cat([(out[t] / scales[t]).reshape(-1) for t in active])

    e_parts, w_parts = [], []
    for t in active:
        r = res[t].reshape(res[t].shape[0], -1) / scales[t]
        norm = r.norm(dim=-1)
        _, w = _rho_and_weight(norm, loss.robust)
        w_parts.append((coef[t] * w)[:, None].expand_as(r).reshape(-1))
        e_parts.append(r.reshape(-1))
    e = torch.cat(e_parts)
    w = torch.cat(w_parts)
    jac = jacfwd(flat)(theta).reshape(e.shape[0], -1)  # (N, G*P)
    jw = jac * w[:, None]
    return jw.T @ jac, jw.T @ e


def fit(batch: FitBatch, *, kind: str, loss: AlignLossConfig, iterations: int, base: Tensor,
        groups: Tensor, pivot: Tensor, tolerance: float = 0.0, max_points: int = 1500,
        bounds: Bounds | None = None, seed: int = 0, progress: Progress | None = None,
        anneal: float = 1.0) -> FitOutcome:
    """Fit ``D(theta)`` so that ``D(theta) @ base[g]`` aligns the mesh with the generator.

    base (G, 4, 4), groups (B,) in [0, G), pivot (G, 3). With ``bounds`` theta is projected into
    the box after every step (per-sample refinement). ``anneal`` > 1 starts with the robust scales
    multiplied by it and halves the factor every iteration down to 1 (graduated non-convexity: a
    redescending loss such as Cauchy then still sees a large initial misalignment).
    """
    nominal = loss
    n_groups, n_par = base.shape[0], N_PARAMS[kind]
    dev = batch.mesh_world.device
    theta = torch.zeros(n_groups, n_par, dtype=torch.float64, device=dev)
    lam = 1e-3
    outcome = FitOutcome(maps=base.clone(), theta=theta)
    for it in range(iterations):
        factor = max(1.0, anneal * 0.5 ** it)
        loss = nominal if factor == 1.0 else replace(
            nominal, **{f"{t}_scale": getattr(nominal, f"{t}_scale") * factor for t in TERMS})
        maps = delta_matrix(theta, kind, pivot) @ base
        corr, _ = match(batch, maps, groups, max_points=max_points, seed=seed + it)
        coef = _row_coefficients(corr, groups, n_groups, loss)

        def fn(th_flat: Tensor, corr: Correspondences = corr) -> dict[str, Tensor]:
            return residuals(th_flat.reshape(n_groups, n_par), corr, batch, base, groups, kind, pivot)

        flat = theta.reshape(-1)
        cost0, terms0, by_group = _cost(fn(flat), coef, loss, term_groups(corr, groups), n_groups)
        if it == 0:
            outcome.cost_first, outcome.terms_first, outcome.group_cost_first = cost0, terms0, by_group
        h, g = _normal_equations(flat, fn, coef, loss)
        diag = torch.diag(h).clamp_min(1e-12)
        accepted, cost1, step = False, cost0, torch.zeros_like(flat)
        for _ in range(8):
            try:
                step = -torch.linalg.solve(h + lam * torch.diag(diag), g)
            except RuntimeError:
                lam *= 10.0
                continue
            cand = flat + step
            if bounds is not None:
                cand = clamp_theta(cand.reshape(n_groups, n_par), kind, **vars(bounds)).reshape(-1)
            cost1, _, _ = _cost(fn(cand), coef, loss)
            if cost1 <= cost0:
                accepted = True
                break
            lam *= 10.0
        if accepted:
            lam = max(lam / 3.0, 1e-7)
            new_theta = (flat + step if bounds is None else cand).reshape(n_groups, n_par)
            moved = delta_matrix(new_theta, kind, pivot) - delta_matrix(theta, kind, pivot)
            change = float(moved.abs().max())
            theta = new_theta
        else:
            change = 0.0
        entry = {"iteration": it + 1, "scale_factor": factor, "cost": cost0, "cost_after_step": cost1,
                 "accepted": accepted,
                 "change": change, "lambda": lam, **{f"n_{k}": v for k, v in corr.counts().items()},
                 **{f"loss_{k}": v for k, v in terms0.items()}}
        outcome.history.append(entry)
        if progress is not None:
            progress(it + 1, entry)
        if accepted and change < tolerance:
            break
    outcome.theta = theta
    outcome.maps = delta_matrix(theta, kind, pivot) @ base
    # the residual after the fit, on fresh correspondences (what "after" means to a reader)
    loss = nominal
    corr, _ = match(batch, outcome.maps, groups, max_points=max_points, seed=seed + iterations)
    coef = _row_coefficients(corr, groups, n_groups, loss)
    res = residuals(theta, corr, batch, base, groups, kind, pivot)
    outcome.cost_last, outcome.terms_last, outcome.group_cost_last = _cost(
        res, coef, loss, term_groups(corr, groups), n_groups)
    return outcome
