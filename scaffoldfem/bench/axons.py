"""Convergence of the axon outcomes in mesh size and growth step (issue 10 evidence).

The fields of one run are frozen: the study's geometry is meshed at base sizes
``h, h/√2, h/2`` (Gmsh, ``geometry.resolution = "<h> mm"``, the faceting of
curved borders refined with h), and on each mesh the same analytic fields are
set: a neurotrophin (NT-3) lure rising caudally as exp(0.8 z/mm) from K_d at the
lesion mid-plane, tilted ±10 % across x (P1, :func:`lure_profile`), and the
region-wise Young's modulus of the study's tissue and scaffold (DG0, as the
coupled model has it at day 0, :func:`region_modulus`); the scar is the
``scar`` region as in a run. ``n_axons`` descending growth cones of the study's
``[axons]`` model are traced for ``days`` in those fields with the same seed on
every mesh (common random numbers: the noise of an axon depends only on its id
and step; all start at t = 0: frozen fields make start times a shift of the
clock), then once more on the finest mesh with the growth (arc-length) step
halved. A model that smooths its cue fields gets ``axons.cue_smoothing =``
:data:`CUE_SMOOTHING` (the coarsest mesh must resolve it).

Reported per case: crossing fraction ± SE, crossing time from seeding (median,
IQR, SE of the median by bootstrap over axons), growth-cone steps per second;
against the finest mesh: the difference of the crossing fraction with the
combined SE sqrt(SE_a² + SE_b²) (the criterion of tests/test_axon_convergence.py)
and the paired SE (common random numbers make the paired difference tighter
when the paths stay alike), the largest difference of the crossing curve over
depth, and the difference of the median crossing time with its paired
bootstrap SE.

``python -m scaffoldfem.bench.axons [--n-axons 2000] [--h 0.4] [--days 28]
[--set axons.KEY=VALUE] [--json]`` (also under ``mpiexec``; the tracer gives the
same paths on any number of ranks).
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import argparse
import json
import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import fem
from mpi4py import MPI

from scaffoldfem.axons.outcomes import Layout, Outcomes
from scaffoldfem.axons.tracer import GrowthFields, Tracer
from scaffoldfem.config.study import Study, load_study, load_study_mpi
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.physics.materials import gibson_ashby
from scaffoldfem.regions import cell_tag

#: Mesh refinement factors of the base size h (h, h/√2, h/2).
LEVELS = (1.0, math.sqrt(2.0), 2.0)
#: Elements per full turn on curved borders at the coarsest mesh (scaled with 1/h).
CURVATURE_POINTS = 16
#: Frozen neurotrophin: value at the lesion mid-plane (ng/mL, = K_d of NT-3) and
#: caudal log-slope (1/mm): the occupancy gradient across a growth cone then
#: exceeds the default detection threshold everywhere between seeds and crossing.
SPECIES = "NT3"
LURE_LEVEL = 27.0
LURE_SLOPE = 0.8
#: Cue smoothing length (mm) of a model that smooths its cue fields, resolved by
#: the coarsest default mesh (h = 0.4 mm: ~0.1-mm cells where regions meet).
CUE_SMOOTHING = 0.25
#: Growth time (day): most cones of the default model cross within it.
DAYS = 28.0
#: Bootstrap resamples for the SE of medians and of their paired differences.
BOOTSTRAP = 400


def lure_profile(x: np.ndarray, study: Study, level: float = LURE_LEVEL,
                 slope: float = LURE_SLOPE) -> np.ndarray:
    """Frozen neurotrophin (ng/mL) at points ``x`` (3, n): ``level`` at the lesion
    mid-plane rising as exp(``slope``·z) caudally (a caudal lure), tilted ±10 %
    across x so the field is not one-dimensional."""
    z0, z1 = study.geometry.lesion_z()
    a = study.geometry.cord.semi_axis_x
    return level * np.exp(slope * (x[2] - 0.5 * (z0 + z1))) * (1.0 + 0.1 * x[0] / a)


def region_modulus(study: Study) -> dict[int, float]:
    """Young's modulus (kPa) per cell tag at day 0: tissue values, Gibson-Ashby for
    the scaffold matrix at its initial porosity, the cavity value in lumens/cavity."""
    t, s = study.tissue, study.scaffold
    E = {cell_tag(r): getattr(t, r).modulus for r in ("white_matter", "grey_matter", "scar")}
    E[cell_tag("scaffold")] = max(gibson_ashby(s.solid_modulus, s.porosity,
                                               s.modulus_exponent), t.cavity.modulus)
    E[cell_tag("channel")] = E[cell_tag("cavity")] = t.cavity.modulus
    return E


def frozen_fields(mesh: Any, cell_tags: Any, study: Study) -> GrowthFields:
    """The frozen fields on ``mesh``: P1 neurotrophin (:func:`lure_profile`) and DG0
    modulus (:func:`region_modulus`)."""
    V = fem.functionspace(mesh, ("Lagrange", 1))
    c = fem.Function(V)
    c.interpolate(lambda x: lure_profile(x, study))
    Q = fem.functionspace(mesh, ("DG", 0))
    E = fem.Function(Q)
    emap = region_modulus(study)
    vals = np.full(len(E.x.array), study.tissue.cavity.modulus)
    idx = np.asarray(cell_tags.indices)
    dofs = np.asarray(Q.dofmap.list)[idx, 0]
    vals[dofs] = [emap.get(int(v), study.tissue.cavity.modulus) for v in cell_tags.values]
    E.x.array[:] = vals
    E.x.scatter_forward()
    return GrowthFields(concentrations={SPECIES: c}, stiffness=E)


def mesh_geometry(study: Study, h: float, level: float) -> Any:
    """The study's geometry at base size ``h/level`` (faceting refined alike)."""
    g = study.geometry.model_dump(mode="json")
    g["resolution"] = f"{h / level:.6g} mm"
    g["mesh"] = {**g.get("mesh", {}), "curvature_points": round(CURVATURE_POINTS * level),
                 "num_threads": 1}
    return type(study.geometry).model_validate(g)


def step_key(cfg: Any) -> str:
    """Name of the growth-step length in ``[axons]`` (``arc_step``; ``step_length``
    in the original model)."""
    return "arc_step" if "arc_step" in type(cfg).model_fields else "step_length"


def axons_config(study: Study, n_axons: int, step_scale: float = 1.0) -> Any:
    """The study's ``[axons]`` with ``n_axons`` descending cones, the growth step
    scaled by ``step_scale`` and every cone starting at t = 0 (frozen fields do not
    change in time: start times would only shift the clock)."""
    cfg = study.axons
    upd: dict[str, Any] = {"count": n_axons, "sensory": False}
    fields = type(cfg).model_fields
    for key in ("dieback_delay", "seeding_window"):
        if key in fields:
            upd[key] = "0 day"
    if step_scale != 1.0:
        k = step_key(cfg)
        upd[k] = f"{getattr(cfg, k) * step_scale!r} mm"
    return type(cfg).model_validate({**cfg.model_dump(mode="json"), **upd})


def trace(comm: Any, study: Study, geom: Any, n_axons: int, days: float, dt: float,
          step_scale: float = 1.0, outputs: Sequence[float] = ()) -> dict[str, Any]:
    """Trace ``n_axons`` descending axons for ``days`` in the frozen fields on the mesh
    of ``geom``; returns per-axon results and timings (the same on every rank)."""
    tic = time.perf_counter()
    mesh, cell_tags, _ = load_mesh(ensure_mesh(geom, comm), comm, ghost_mode="shared_facet")
    t_mesh = time.perf_counter() - tic
    fields = frozen_fields(mesh, cell_tags, study)
    axcfg = axons_config(study, n_axons, step_scale)
    tr = Tracer(mesh, cell_tags, axcfg, geom.lesion_z(), [SPECIES])
    tr.seed(0.0)
    tic = time.perf_counter()
    t = 0.0
    while t < days - 1e-9:
        t1 = min(t + dt, days)
        tr.advance(t, t1, fields)
        t = t1
    wall = comm.allreduce(time.perf_counter() - tic, op=MPI.MAX)
    f = tr.final()
    T = tr.trajectories(root=0)
    res: dict[str, Any] | None = None
    if comm.rank == 0:
        layout = Layout.from_geometry(geom, axcfg.cross_depth)
        oc = Outcomes(T, layout)
        steps = _cone_steps(T, tr.step, len(f["id"]))
        tab = oc.crossing_table([days])
        res = {
            "vertices": mesh.topology.index_map(0).size_global,
            "cells": mesh.topology.index_map(3).size_global,
            "h_mm": geom.base_size(), "step_mm": getattr(axcfg, step_key(axcfg)),
            "crossed": f["crossed"].copy(), "t_cross": (f["t_cross"] - f["t_seed"]).copy(),
            "curve": tab["P"].to_numpy(), "depths": tab["depth_mm"].to_numpy(),
            "series": oc.timeseries(list(outputs) or [days]),
            "metrics": oc.metrics()["populations"].get("descending", {}),
            "mesh_s": t_mesh, "trace_s": wall, "cone_steps": steps,
            "steps_per_s": steps / wall if wall > 0 else float("nan"),
        }
    return comm.bcast(res, root=0)


def _cone_steps(T: dict, nstep: int, n: int) -> int:
    """Growth steps done by all cones: per axon last recorded step - first."""
    if T is None or "step" not in T or len(T["offsets"]) < 2:
        return nstep * n
    st = np.asarray(T["step"])
    off = np.asarray(T["offsets"])
    return int(np.sum(st[off[1:] - 1] - st[off[:-1]]))


def _bootstrap_median_se(a: np.ndarray, b: np.ndarray | None, rng: np.random.Generator
                         ) -> float:
    """Bootstrap SE over axons of median(a[crossed]) or, with ``b``, of the paired
    difference median(a) - median(b) (same resampled axons; NaN = not crossed)."""
    n = len(a)
    out = []
    for _ in range(BOOTSTRAP):
        i = rng.integers(0, n, n)
        ma = np.nanmedian(a[i]) if np.isfinite(a[i]).any() else np.nan
        if b is None:
            out.append(ma)
        else:
            mb = np.nanmedian(b[i]) if np.isfinite(b[i]).any() else np.nan
            out.append(ma - mb)
    out = np.asarray(out)
    out = out[np.isfinite(out)]
    return float(np.std(out, ddof=1)) if len(out) > 1 else float("nan")


def compare(a: dict[str, Any], b: dict[str, Any], seed: int = 0) -> dict[str, float]:
    """Differences of case ``a`` against the reference ``b`` (same axons, CRN)."""
    rng = np.random.default_rng(seed)
    xa, xb = a["crossed"].astype(float), b["crossed"].astype(float)
    n = len(xa)
    pa, pb = xa.mean(), xb.mean()
    se_a, se_b = math.sqrt(pa * (1 - pa) / n), math.sqrt(pb * (1 - pb) / n)
    d = xa - xb
    ta = np.where(a["crossed"], a["t_cross"], np.nan)
    tb = np.where(b["crossed"], b["t_cross"], np.nan)
    dc = a["curve"] - b["curve"]
    k = int(np.argmax(np.abs(dc)))
    pk = 0.5 * (a["curve"][k] + b["curve"][k])

    def med(t: np.ndarray) -> float:
        return float(np.nanmedian(t)) if np.isfinite(t).any() else float("nan")

    return {
        "d_crossing": pa - pb,
        "se_combined": math.sqrt(se_a**2 + se_b**2),
        "se_paired": float(np.std(d, ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
        "d_curve_max": float(dc[k]), "d_curve_depth_mm": float(a["depths"][k]),
        "se_curve_at": math.sqrt(2 * pk * (1 - pk) / n),
        "d_median_day": med(ta) - med(tb),
        "se_d_median_day": _bootstrap_median_se(ta, tb, rng),
    }


def bench_axons(comm: Any = MPI.COMM_WORLD, study: Study | None = None, n_axons: int = 2000,
                h: float = 0.4, levels: Sequence[float] = LEVELS, days: float = DAYS,
                dt: float = 0.5, halve_step: bool = True, seed: int | None = None,
                output_every: float = 1.0, cue_smoothing: float | None = CUE_SMOOTHING
                ) -> dict[str, Any]:
    """Trace the same axons in frozen fields on meshes ``h/level`` and (finest mesh)
    with the arc-length step halved; returns the cases and their comparisons
    against the finest mesh (see the module docstring), the same on every rank.

    Args:
        comm: Communicator.
        study: The study whose geometry, tissue, scaffold and ``[axons]`` are used
            (default: the built-in defaults).
        n_axons: Descending axons seeded (common random numbers across cases).
        h: Coarsest base mesh size (mm).
        levels: Refinement factors of ``h`` (the last is the reference).
        days: Growth time.
        dt: Interval of each ``Tracer.advance`` call (the solver step of a run).
        halve_step: Also trace on the finest mesh with ``step_length / 2``.
        seed: Override ``axons.seed``.
        output_every: Interval of the crossing-fraction time series.
        cue_smoothing: ``axons.cue_smoothing`` (mm) for a model that smooths its cue
            fields: the coarsest mesh must resolve it (the tracer refuses less than
            two border cells: ~0.2 mm at h = 0.4 mm); None keeps the study's.
    """
    study = study if study is not None else load_study(None)
    ax = study.axons.model_dump(mode="json")
    if seed is not None:
        ax["seed"] = seed
    if cue_smoothing is not None and "cue_smoothing" in type(study.axons).model_fields:
        ax["cue_smoothing"] = f"{cue_smoothing!r} mm"
    study = study.model_copy(update={"axons": type(study.axons).model_validate(ax)})
    outputs = list(np.arange(output_every, days + 1e-9, output_every)) or [days]
    tic = time.perf_counter()
    cases = []
    for lev in levels:
        g = mesh_geometry(study, h, lev)
        r = trace(comm, study, g, n_axons, days, dt, outputs=outputs)
        r["case"] = f"h/{lev:.3g}" if lev != 1 else "h"
        cases.append(r)
    if halve_step:
        g = mesh_geometry(study, h, levels[-1])
        r = trace(comm, study, g, n_axons, days, dt, step_scale=0.5, outputs=outputs)
        r["case"] = f"{cases[-1]['case']}, step/2"
        cases.append(r)
    ref = cases[len(levels) - 1]
    rng = np.random.default_rng(1)
    for c in cases:
        tc = np.where(c["crossed"], c["t_cross"], np.nan)
        c["se_median_day"] = _bootstrap_median_se(tc, None, rng)
        c["vs_finest"] = compare(c, ref) if c is not ref else None
    return {"ranks": comm.size, "n_axons": n_axons, "days": days, "dt": dt, "h_mm": h,
            "cue_smoothing_mm": getattr(study.axons, "cue_smoothing", None),
            "cases": cases, "wall_s": time.perf_counter() - tic}


def table(res: dict[str, Any]) -> str:
    """The bench as a plain-text table."""
    sm = res.get("cue_smoothing_mm")
    lines = [f"axon outcome convergence: {res['n_axons']} descending axons, {res['days']:g} "
             f"days in frozen fields" + (f", cue smoothing {sm:g} mm" if sm else "")
             + f", {res['ranks']} rank(s), {res['wall_s']:.0f} s",
             f"{'case':<14}{'h mm':>6}{'step µm':>8}{'cells':>9}{'cross %':>9}{'±SE':>6}"
             f"{'Δ vs ref':>9}{'±SEc':>6}{'±SEp':>6}{'max|ΔP(d)|':>11}{'±SEc':>6}{'@d mm':>6}"
             f"{'t½ d':>7}{'IQR':>12}{'±SE':>6}{'Δt½':>7}{'±SE':>6}{'steps/s':>10}"]
    for c in res["cases"]:
        x = c["crossed"].astype(float)
        n = len(x)
        p = x.mean() if n else float("nan")
        m = c["metrics"]
        iqr = m.get("time_to_cross_iqr_day") or [None, None]
        med = m.get("median_time_to_cross_day")
        v = c["vs_finest"]

        def f(val, fmt):
            return format(val, fmt) if val is not None and np.isfinite(val) else "-"

        row = (f"{c['case']:<14}{c['h_mm']:>6.3g}{1000 * c['step_mm']:>8.3g}{c['cells']:>9d}"
               f"{100 * p:>9.2f}{100 * math.sqrt(p * (1 - p) / n):>6.2f}")
        if v is None:
            row += f"{'(ref)':>9}{'':>6}{'':>6}{'':>11}{'':>6}{'':>6}"
        else:
            row += (f"{100 * v['d_crossing']:>+9.2f}{100 * v['se_combined']:>6.2f}"
                    f"{100 * v['se_paired']:>6.2f}{100 * v['d_curve_max']:>+11.2f}"
                    f"{100 * v['se_curve_at']:>6.2f}{v['d_curve_depth_mm']:>6.2g}")
        row += (f"{f(med, '.2f'):>7}{f(iqr[0], '.1f') + '–' + f(iqr[1], '.1f'):>12}"
                f"{f(c['se_median_day'], '.2f'):>6}")
        if v is None:
            row += f"{'':>7}{'':>6}"
        else:
            row += f"{f(v['d_median_day'], '+.2f'):>7}{f(v['se_d_median_day'], '.2f'):>6}"
        row += f"{c['steps_per_s']:>10.3g}"
        lines.append(row)
    lines.append("cross %, Δ and ΔP(d) (the crossing curve at the final time, largest "
                 "difference over d in 0-2 mm past the far face) in points against the last "
                 "mesh (ref); SEc = sqrt(SE_a² + SE_b²), SEp = paired SE (common random "
                 "numbers); t½ = median time to cross from seeding (day), IQR, SE by "
                 "bootstrap over axons (Δt½: paired bootstrap).")
    return "\n".join(lines)


def jsonable(res: dict[str, Any]) -> dict[str, Any]:
    """The result without per-axon arrays (for ``--json`` / ``scaffoldfem bench``)."""
    out = {k: v for k, v in res.items() if k != "cases"}
    out["cases"] = []
    for c in res["cases"]:
        d = {k: v for k, v in c.items() if k not in ("crossed", "t_cross", "curve", "depths",
                                                     "series")}
        d["crossing_fraction"] = float(c["crossed"].mean()) if len(c["crossed"]) else None
        d["series"] = c["series"].to_dict("list")
        out["cases"].append(d)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command-line entry: print the table (and ``--json``) on rank 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-axons", type=int, default=2000)
    ap.add_argument("--h", type=float, default=0.4, help="coarsest base mesh size (mm)")
    ap.add_argument("--days", type=float, default=DAYS)
    ap.add_argument("--dt", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--no-step", action="store_true", help="skip the halved-step case")
    ap.add_argument("--cue-smoothing", type=float, default=CUE_SMOOTHING,
                    help="axons.cue_smoothing in mm (negative: the study's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="study override, e.g. --set axons.weights.noise=0.2")
    ap.add_argument("--json", action="store_true", help="also print the results as JSON")
    a = ap.parse_args(argv)
    comm = MPI.COMM_WORLD
    study = load_study_mpi(comm, None, a.set)
    res = bench_axons(comm, study, n_axons=a.n_axons, h=a.h, days=a.days, dt=a.dt,
                      halve_step=not a.no_step, seed=a.seed,
                      cue_smoothing=a.cue_smoothing if a.cue_smoothing >= 0 else None)
    if comm.rank == 0:
        print(table(res), flush=True)
        if a.json:
            print(json.dumps(jsonable(res), indent=2, default=float))
    return res


if __name__ == "__main__":
    main()
