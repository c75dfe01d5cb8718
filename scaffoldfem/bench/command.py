"""``scaffoldfem bench``: the performance figures the issues ask for.

Sections (``scaffoldfem bench SECTION...``):

* ``meshing`` — Gmsh time of the ~200k-vertex ("fine") default mesh (target <= 30 s).
* ``transport`` — time per species per step through the solver class against a bare
  PETSc KSP solve of the same matrix and preconditioner (target ratio <= 1.2).
* ``tracing`` — growth-cone locate + sample steps per second per core (target >= 1e6).
* ``run`` — the default study on the fine mesh: wall time, peak memory, split per phase.
* ``dt`` — time-step convergence of the headline metrics (coarse mesh, dt, dt/2, dt/4).
* ``axons`` — axon outcomes in frozen fields under mesh refinement (h, h/√2, h/2) and a
  halved arc-length step, 2000 axons with common random numbers (:mod:`scaffoldfem.bench.axons`).
* ``tracing_run`` — the tracing phase of the medium baseline (500 axons, 8 weeks): cue
  solves, cone steps/s and exchanges per solver step (target <= 5 s).
* ``floor`` — every transport solve of the medium baseline (species sharing an operator
  together) against bare CG + GAMG at the same tolerance and a stored MUMPS factorisation
  on the same matrices, with iterations and balance errors; the elasticity solve
  (:mod:`scaffoldfem.bench.floor`).

Timings belong here, never in tests. Results print on rank 0 and go to ``--out``.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from scaffoldfem.bench import axons as bench_axon_convergence
from scaffoldfem.bench import floor as bench_floor_module
from scaffoldfem.bench.solver import bench_transport as _bench_transport
from scaffoldfem.bench.tracing import bench_baseline_tracing, bench_locate, remove_run_dir
from scaffoldfem.config.study import Study
from scaffoldfem.errors import UsageError
from scaffoldfem.files import atomic_write_json
from scaffoldfem.geometry.meshing import bench_meshing as _bench_meshing
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.mpi import say
from scaffoldfem.run.loop import run_study

SECTIONS = ("meshing", "transport", "tracing", "run", "dt", "axons", "floor", "tracing_run")


def bench_meshing(comm: Any) -> dict[str, Any]:
    r = _bench_meshing("fine", comm=comm)
    r["target_s"] = 30.0
    return r


def bench_transport(comm: Any) -> dict[str, Any]:
    study = Study.default(geometry__resolution="fine")
    mesh, _, _ = load_mesh(ensure_mesh(study.geometry, comm), comm)
    r = _bench_transport(mesh, steps=10)
    r["target_ratio"] = 1.2
    return r


def bench_tracing(comm: Any) -> dict[str, Any]:
    r = bench_locate(comm=comm)
    r["target_steps_per_s_per_core"] = 1e6
    return r


def _run(overrides: dict[str, Any], comm: Any) -> dict[str, Any]:
    """Run the default study with ``overrides`` (no figures: timings only) in a temporary
    directory; its wall time, metrics, memory and phases."""
    study = Study.default({"output.figures": False, **overrides})
    tmp = comm.bcast(tempfile.mkdtemp(prefix="scaffoldfem-bench-") if comm.rank == 0 else None)
    out = Path(tmp) / "run"
    tic = time.perf_counter()
    run_study(study, out, comm, quiet=True)
    wall = time.perf_counter() - tic
    metrics = json.loads((out / "metrics.json").read_text())
    prov = json.loads((out / "provenance.json").read_text())
    remove_run_dir(tmp, comm)
    return {
        "wall_s": wall,
        "metrics": metrics,
        "peak_memory": prov["peak_memory"],
        "timing_s": prov["timing_s"],
        "solvers": prov["solvers"],
        "overrides": overrides,
    }


def bench_run(comm: Any) -> dict[str, Any]:
    """The default study on the ``fine`` mesh: wall time against issue 14's 3 minutes."""
    r = _run({"geometry.resolution": "fine"}, comm)
    return {
        "wall_s": r["wall_s"],
        "target_s": 180.0,
        "mesh": r["metrics"]["mesh"],
        "timing_s": r["timing_s"],
        "solvers": r["solvers"],
        "peak_memory": r["peak_memory"],
    }


def bench_dt(comm: Any) -> dict[str, Any]:
    """Headline metrics at 2·dt, dt and dt/2 (coarse mesh, default dt): the default
    step is converged when the change from dt to dt/2 is small against the metric;
    the ratio of successive changes gives the observed order (2 for order 1)."""
    dt = Study().time.dt
    rows = []
    for k in (0.5, 1, 2):
        r = _run(
            {
                "geometry.resolution": "coarse",
                "time.dt": f"{dt / k} day",
                "time.dt_min": f"{min(1e-4, dt / k)} day",
            },
            comm,
        )
        m = r["metrics"]
        row = {"dt_day": dt / k, "wall_s": r["wall_s"]}
        for name, sp in m["species"].items():
            row[f"lesion_auc_{name}"] = sp["lesion_auc_ng_day_per_mL"]
        row["mass_remaining"] = m["scaffold"]["mass_remaining_fraction"]
        row["crossing_fraction"] = m.get("axons", {}).get("crossing_fraction")
        rows.append(row)
    rel = {}
    for key in rows[0]:
        if key in ("dt_day", "wall_s") or rows[0][key] in (None, 0):
            continue
        a, b, c = (rows[i][key] for i in range(3))
        rel[key] = {
            "rel_change_dt_to_half": abs(a - b) / abs(c) if c else None,
            "observed_order": (abs(a - b) / abs(b - c)) if abs(b - c) > 0 else None,
        }
    return {"rows": rows, "convergence": rel}


def bench_axons(comm: Any) -> dict[str, Any]:
    """Axon outcomes in frozen fields on meshes h, h/√2, h/2 and with the arc-length
    step halved (common random numbers): crossing fraction, crossing curve and
    crossing times with their differences and standard errors."""
    r = bench_axon_convergence.bench_axons(comm)
    say(comm, bench_axon_convergence.table(r))
    return bench_axon_convergence.jsonable(r)


def bench_tracing_run(comm: Any) -> dict[str, Any]:
    """The tracing phase of the medium baseline: cue solves, cone steps/s, exchanges
    per solver step (:func:`scaffoldfem.bench.tracing.bench_baseline_tracing`)."""
    r = bench_baseline_tracing(comm)
    r["target_s"] = 5.0
    return r


def bench_floor(comm: Any) -> dict[str, Any]:
    """The model's own solves (medium baseline matrices) against bare GAMG and a stored
    factorisation (:mod:`scaffoldfem.bench.floor`)."""
    r = bench_floor_module.bench_floor(comm)
    say(comm, bench_floor_module.table(r))
    return r


def run_bench(what: list[str], comm: Any, out: Path | None = None) -> int:
    """Run the named sections (``all`` = meshing, transport, tracing) and report."""
    names = list(SECTIONS[:3]) if "all" in what else what
    bad = [n for n in names if n not in SECTIONS]
    if bad:
        raise UsageError(
            f"unknown bench section(s) {', '.join(bad)}; choose from {', '.join(SECTIONS)}"
        )
    results: dict[str, Any] = {"ranks": comm.size}
    for name in names:
        say(comm, f"== bench {name} ==")
        r = globals()[f"bench_{name}"](comm)
        results[name] = r
        say(comm, json.dumps(r, indent=2, default=float))
    if out is not None and comm.rank == 0:
        atomic_write_json(out, results)
    return 0
