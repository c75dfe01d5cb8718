"""Benchmark of growth-cone point location and field sampling (issue 4 target).

Measures, on a box mesh of about 200k vertices (58^3 cells x 6 tetrahedra),
how many growth-cone steps per second one core does for *locate + sample*:
walk each cone from its previous cell to its new position, then evaluate a P1
concentration, its gradient and a DG0 stiffness there. Many cones (1e5) take
small random steps (a fraction of a cell), as growth cones do. For reference
it also times DOLFINx's generic ``compute_colliding_cells`` on the same points,
and a full :class:`~scaffoldfem.axons.tracer.Tracer` step with every cue switched on.

:func:`bench_baseline_tracing` runs the default study (``medium`` mesh, 500 axons,
8 weeks, no figures) and reports its tracing phase: wall time, split into cue
preparation (decisions + Helmholtz solves) and the walk, growth-cone steps per
second, exchanges per solver step and Helmholtz solves.

Run ``python -m scaffoldfem.bench.tracing [--n 58] [--cones 100000] [--steps 20]
[--baseline]`` (also under ``mpiexec``; the rate is reported per core).
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import argparse
import contextlib
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import scaffoldfem  # noqa: F401
import dolfinx
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.axons.fields import CueFields
from scaffoldfem.axons.tracer import GrowthFields, Tracer
from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.config.study import Study
from scaffoldfem.fem.locate import FOUND, LOST, Locator
from scaffoldfem.regions import cell_tag
from scaffoldfem.run.loop import run_study


def _fields(msh):
    V = fem.functionspace(msh, ("Lagrange", 1))
    c = fem.Function(V)
    c.interpolate(lambda x: 30.0 * np.exp(-((x[0] - 0.3) ** 2 + x[2] ** 2)))
    W = fem.functionspace(msh, ("DG", 0))
    E = fem.Function(W)
    E.interpolate(lambda x: np.where(x[0] < 0.5, 1.0, 0.1))
    return c, E


def bench_locate(n: int = 58, cones: int = 100_000, steps: int = 20, seed: int = 0,
                 comm=MPI.COMM_WORLD) -> dict:
    """Time locate + sample per growth-cone step; returns a dict of results."""
    t = time.perf_counter()
    msh = dmesh.create_box(comm, [[0, 0, 0], [1, 1, 1]], [n, n, n], dmesh.CellType.tetrahedron)
    t_mesh = time.perf_counter() - t
    t = time.perf_counter()
    loc = Locator(msh)
    t_setup = time.perf_counter() - t
    c, E = _fields(msh)
    cnod = loc.nodal_values(c)
    Ecell = loc.cell_values(E)
    rng = np.random.default_rng(seed + comm.rank)
    m = cones // comm.size
    cells = rng.integers(0, loc.num_owned, m).astype(np.int32)
    x = np.einsum("ni,nij->nj", rng.dirichlet(np.ones(4), m), loc.x[loc.nodes[cells]])
    h = 1.0 / n
    # Small steps (a quarter of a cell edge) with persistence, reflected at the box.
    d = rng.normal(size=(m, 3))
    d /= np.linalg.norm(d, axis=1)[:, None]
    walk_t = samp_t = cpu_t = 0.0
    found = 0
    for _ in range(steps):
        d += 0.3 * rng.normal(size=(m, 3))
        d /= np.linalg.norm(d, axis=1)[:, None]
        xn = x + 0.25 * h * d
        out = (xn < 0) | (xn > 1)
        d[out] *= -1.0
        xn = np.clip(xn, 1e-9, 1 - 1e-9)
        t, tc = time.perf_counter(), time.process_time()
        res = loc.walk(xn, cells)
        ok = res.status == FOUND
        lost = res.status == LOST
        if lost.any():  # walk did not converge: tree fallback
            cc = loc.locate(xn[lost])
            res.cell[lost] = np.where(cc >= 0, cc, cells[lost])
            res.lam[lost] = loc.barycentric(res.cell[lost], xn[lost])
        # Cones whose walk left this rank would migrate (the tracer's exchange);
        # here they just stay where they were for this step.
        gone = ~ok & ~lost
        res.cell[gone], xn[gone] = cells[gone], x[gone]
        res.lam[gone] = loc.barycentric(cells[gone], x[gone])
        t1 = time.perf_counter()
        cval, cgrad = loc.sample_p1(cnod, res.cell, res.lam)
        Ev = np.take(Ecell, res.cell)
        t2 = time.perf_counter()
        cpu_t += time.process_time() - tc
        walk_t += t1 - t
        samp_t += t2 - t1
        found += int(ok.sum())
        x, cells = xn, res.cell
    assert np.isfinite(cval).all() and np.isfinite(cgrad).all() and np.isfinite(Ev).all()
    # Reference: DOLFINx generic location of the same number of points (a sample).
    k = min(m, 20_000)
    tree = dolfinx.geometry.bb_tree(msh, 3)
    t = time.perf_counter()
    cand = dolfinx.geometry.compute_collisions_points(tree, x[:k])
    dolfinx.geometry.compute_colliding_cells(msh, cand, x[:k])
    t_ref = time.perf_counter() - t
    total = walk_t + samp_t
    nsteps = m * steps
    res = {
        "ranks": comm.size, "cells_n": n,
        "vertices": msh.topology.index_map(0).size_global,
        "cones_per_rank": m, "steps": steps,
        "mesh_s": t_mesh, "locator_setup_s": t_setup,
        "locate_s": walk_t, "sample_s": samp_t,
        "steps_per_s_per_core": nsteps / total,
        "steps_per_cpu_s": nsteps / cpu_t,
        "walk_found_fraction": found / nsteps,
        "dolfinx_colliding_cells_points_per_s": k / t_ref,
    }
    allres = comm.gather(res)
    if comm.rank == 0:
        res["steps_per_s_per_core"] = min(r["steps_per_s_per_core"] for r in allres)
    return comm.bcast(res)


def bench_tracer(n: int = 30, cones: int = 2000, days: float = 2.0, comm=MPI.COMM_WORLD) -> dict:
    """Time full tracer steps (all cues on) on a box; returns cone-steps per second."""
    msh = dmesh.create_box(comm, [[-1, -1, -2], [1, 1, 2]], [n, n, 2 * n],
                           dmesh.CellType.tetrahedron)
    loc = Locator(msh)
    mid = loc.midpoints()
    tag = np.where(np.abs(mid[:, 2]) < 0.3, cell_tag("scar"), cell_tag("white_matter"))
    tags = dmesh.meshtags(msh, 3, np.arange(loc.num_cells, dtype=np.int32), tag.astype(np.int32))
    # Cue smoothing over ~3 box cells (a run refuses one the mesh cannot resolve).
    # Growth from t = 0 (no die-back delay), so every cone moves in the timed window.
    p = AxonsConfig(count=cones, seed=3, cross_depth="0.2 mm", stall_time="50 day",
                    cue_smoothing=f"{6.0 / n:.4g} mm", dieback_delay="0 day",
                    seeding_window="0 day")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF"], locator=loc)
    tr.seed(0.0)
    c, E = _fields(msh)
    t = time.perf_counter()
    tr.advance(0.0, days, GrowthFields({"BDNF": c}, stiffness=E))
    el = time.perf_counter() - t
    # Arc steps actually taken: each cone's own step counter (``tr.step`` counts
    # advance() calls, not growth steps).
    total_steps = comm.allreduce(int(tr.c["k"].sum()), op=MPI.SUM)
    return {"cones": cones, "cone_steps": total_steps, "wall_s": el,
            "cone_steps_per_s": total_steps / el / comm.size}


@contextlib.contextmanager
def _timed_tracer(stats: dict):
    """Time :meth:`Tracer.advance` and :meth:`CueFields.ensure` of every tracer built
    inside (keeps the last tracer in ``stats["tracer"]``); restored on exit."""
    advance, ensure = Tracer.advance, CueFields.ensure

    def timed_advance(self, t0, t1, fields):
        tic = time.perf_counter()
        advance(self, t0, t1, fields)
        stats["advance_s"] = stats.get("advance_s", 0.0) + time.perf_counter() - tic
        stats["tracer"] = self

    def timed_ensure(self, time_=float("nan")):
        tic = time.perf_counter()
        ensure(self, time_)
        stats["ensure_s"] = stats.get("ensure_s", 0.0) + time.perf_counter() - tic

    Tracer.advance, CueFields.ensure = timed_advance, timed_ensure
    try:
        yield stats
    finally:
        Tracer.advance, CueFields.ensure = advance, ensure


def remove_run_dir(tmp: str, comm) -> None:
    """Collective: delete a benchmark's temporary run directory once every rank has
    read it (a medium run leaves ~1.8 GB, `fine` ~5 GB: they filled the disk)."""
    comm.barrier()
    if comm.rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_baseline_tracing(comm=MPI.COMM_WORLD, resolution: str = "medium") -> dict:
    """Run the default study (no figures) and report its tracing phase.

    Returns:
        ``tracing_s`` (the run's tracing phase), ``cue_solve_s`` (Helmholtz solves and
        gradients, max over ranks), ``prepare_and_walk_s``, ``solver_steps``,
        ``cone_steps``, ``cone_steps_per_s`` (over the tracing phase),
        ``exchanges_per_solver_step``, ``helmholtz_solves``, ``run_wall_s``, and the
        run's ``crossed`` axons, ``timing_s``, ``solvers`` and ``peak_memory`` (its
        directory is deleted).
    """
    study = Study.default({"output.figures": False, "geometry.resolution": resolution})
    tmp = comm.bcast(tempfile.mkdtemp(prefix="scaffoldfem-bench-") if comm.rank == 0 else None)
    out = Path(tmp) / "run"
    stats: dict = {}
    tic = time.perf_counter()
    with _timed_tracer(stats):
        run_study(study, out, comm, quiet=True)
    wall = time.perf_counter() - tic
    tr = stats["tracer"]
    prov = json.loads((out / "provenance.json").read_text())
    crossed = json.loads((out / "metrics.json").read_text())["axons"]["crossed"]
    remove_run_dir(tmp, comm)
    tracing = float(prov["timing_s"]["tracing"])
    steps = comm.allreduce(int(tr.c["k"].sum()), op=MPI.SUM)
    ensure_s = comm.allreduce(stats.get("ensure_s", 0.0), op=MPI.MAX)
    return {"resolution": resolution, "ranks": comm.size, "axons": study.axons.count,
            "tracing_s": tracing, "cue_solve_s": ensure_s,
            "prepare_and_walk_s": tracing - ensure_s, "solver_steps": tr.step,
            "cone_steps": steps, "cone_steps_per_s": steps / tracing,
            "exchanges_per_solver_step": tr.n_exchanges / max(tr.step, 1),
            "helmholtz_solves": tr.fields.cues.solves(), "run_wall_s": wall,
            "crossed": crossed, "timing_s": prov["timing_s"], "solvers": prov["solvers"],
            "peak_memory": prov["peak_memory"]}


def main(argv: list[str] | None = None) -> dict:
    """Command-line entry: print the benchmark results as JSON on rank 0."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=58, help="cells per box edge (58 -> ~200k vertices)")
    ap.add_argument("--cones", type=int, default=100_000)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-tracer", action="store_true", help="skip the full-tracer timing")
    ap.add_argument("--baseline", action="store_true",
                    help="also run the default study on the medium mesh (minutes)")
    a = ap.parse_args(argv)
    out = {"locate_sample": bench_locate(a.n, a.cones, a.steps)}
    if not a.no_tracer:
        out["tracer"] = bench_tracer()
    if a.baseline:
        out["baseline"] = bench_baseline_tracing()
    if MPI.COMM_WORLD.rank == 0:
        print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
