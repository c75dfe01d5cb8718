"""Weighted means and percentiles of values spread over MPI ranks.

Each rank passes the values it *owns* (owned cells, owned facets) with their
weights (volumes, areas); every rank gets the same answer. The percentile is the
inverted weighted CDF, numpy's ``np.percentile(v, q, weights=w,
method="inverted_cdf")``: the smallest value ``x`` with ``W(x) ≥ q/100 · W_tot``,
``W(x)`` the weight of the values ``≤ x``. It is found exactly by narrowing a
bracket ``(lo, hi]`` with allreduced weight histograms (a few rounds of a
64-bin histogram, one check of the smallest value above ``lo`` per round), so no
rank gathers the others' values.
"""

from __future__ import annotations

import math

import numpy as np
from mpi4py import MPI

__all__ = ["weighted_mean", "weighted_percentile"]

#: Bins per narrowing round.
BINS = 64
#: Rounds before giving up on narrowing (doubles are exhausted after ~12 at 64 bins).
MAX_ROUNDS = 100


def _clean(values: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    v = np.asarray(values, dtype=float).ravel()
    w = np.asarray(weights, dtype=float).ravel()
    if v.shape != w.shape:
        raise ValueError(f"values {v.shape} and weights {w.shape} differ in shape")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("weights must be finite and >= 0")
    keep = (w > 0) & np.isfinite(v)
    return v[keep], w[keep]


def weighted_mean(values: np.ndarray, weights: np.ndarray, comm: MPI.Comm) -> float:
    """``Σ w v / Σ w`` over every rank's (owned) entries; NaN if the weights sum to 0."""
    v, w = _clean(values, weights)
    num, den = comm.allreduce(np.array([float(w @ v), float(w.sum())]), op=MPI.SUM)
    return float(num / den) if den > 0 else math.nan


def weighted_percentile(
    values: np.ndarray, weights: np.ndarray, q: float, comm: MPI.Comm
) -> float:
    """The ``q``-th weighted percentile (inverted CDF) of every rank's entries.

    Collective. Entries of zero weight or non-finite value are ignored.

    Args:
        values: This rank's values (owned entries only: each entry on one rank).
        weights: Their weights (≥ 0), same shape.
        q: Percentile in [0, 100].
        comm: The communicator the entries are spread over.

    Returns:
        The percentile (one of the values), NaN if no entry has positive weight.
    """
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} not in [0, 100]")
    v, w = _clean(values, weights)
    total = comm.allreduce(float(w.sum()), op=MPI.SUM)
    if total <= 0:
        return math.nan
    lo = comm.allreduce(float(v.min(initial=math.inf)), op=MPI.MIN)
    if q == 0.0:
        return lo
    target = q / 100.0 * total
    hi = comm.allreduce(float(v.max(initial=-math.inf)), op=MPI.MAX)
    lo = math.nextafter(lo, -math.inf)  # invariant: W(lo) < target <= W(hi)
    w_lo = 0.0
    for _ in range(MAX_ROUNDS):
        # The smallest value above lo is the answer once its cumulative weight suffices.
        m = comm.allreduce(float(v[v > lo].min(initial=math.inf)), op=MPI.MIN)
        if m >= hi:  # no value in (lo, hi): the answer is hi itself
            return m
        w_m = comm.allreduce(float(w[v <= m].sum()), op=MPI.SUM)
        if w_m >= target:
            return m
        lo, w_lo = m, w_m  # W(m) < target: the answer is above m
        edges = np.linspace(lo, hi, BINS + 1)
        inside = (v > lo) & (v <= hi)
        k = np.clip(np.searchsorted(edges, v[inside], side="left") - 1, 0, BINS - 1)
        hist = comm.allreduce(np.bincount(k, weights=w[inside], minlength=BINS), op=MPI.SUM)
        cum = w_lo + np.cumsum(hist)
        b = int(np.searchsorted(cum, target, side="left"))  # first bin reaching target
        b = min(b, BINS - 1)
        new_lo, new_hi = float(edges[b]), float(edges[b + 1])
        if new_lo <= lo and new_hi >= hi:  # no progress (bracket one ulp wide)
            break
        w_lo = float(cum[b - 1]) if b > 0 else w_lo
        lo, hi = max(new_lo, lo), min(new_hi, hi)
    return comm.allreduce(float(v[v > lo].min(initial=math.inf)), op=MPI.MIN)
