"""Mesh convergence of the axon crossing fraction in frozen fields (issue 10).

The baseline geometry is meshed at base size h = 0.4 mm and h/2 = 0.2 mm
(faceting of the channel walls refined alike); on each mesh the same analytic
fields are set (a caudal neurotrophin lure and the region-wise modulus,
:mod:`scaffoldfem.bench.axons`) and the same 2000 descending axons (one seed:
common random numbers, all starting at t = 0) grow for 28 days with the study's
default ``[axons]`` (a model that smooths its cue fields gets the bench's
``cue_smoothing`` = 0.25 mm, which the coarse mesh resolves).

Criterion: the crossing fraction on h and on h/2 differ by less than two
combined standard errors, sqrt(SE_h² + SE_h/2²), i.e. the mesh changes the answer
by less than the sampling uncertainty of 2000 axons. The tolerance is not to be
loosened: a model whose cues act in one cell layer (the scar repulsion and the
DG0 durotaxis of the original growth-cone model turn cones only in the cells on
either side of a border, so their total deflection scales with h) fails it
(4.6 % vs 14.9 % crossed at h vs h/2); a model whose cues are smooth fields with
their own length scale passes it.
"""

from __future__ import annotations

import pytest

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.bench.axons import bench_axons

N_AXONS = 2000


@pytest.mark.slow
def test_crossing_fraction_converged_in_mesh_size(comm):
    res = bench_axons(comm, n_axons=N_AXONS, h=0.4, levels=(1.0, 2.0), days=28.0,
                      halve_step=False)
    coarse, fine = res["cases"]
    v = coarse["vs_finest"]
    p_h, p_h2 = coarse["crossed"].mean(), fine["crossed"].mean()
    detail = (f"crossing fraction h = 0.4 mm: {100 * p_h:.2f} %, h/2: {100 * p_h2:.2f} %, "
              f"difference {100 * v['d_crossing']:+.2f} points, combined SE "
              f"{100 * v['se_combined']:.2f} (paired {100 * v['se_paired']:.2f}); "
              f"largest crossing-curve difference {100 * v['d_curve_max']:+.2f} points at "
              f"d = {v['d_curve_depth_mm']:g} mm")
    print(detail)
    # A zero on both meshes would "converge" trivially: the frozen fields must let
    # some axons cross.
    assert fine["crossed"].sum() >= 0.01 * N_AXONS, f"degenerate scenario: {detail}"
    assert len(coarse["crossed"]) == len(fine["crossed"]) == N_AXONS
    assert abs(v["d_crossing"]) < 2 * v["se_combined"], detail
