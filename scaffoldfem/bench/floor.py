"""``scaffoldfem bench floor``: the model's linear solves against the floor of the stack.

The default study (medium mesh unless told) is stepped a few steps so that its
matrices and right-hand sides are the real ones (porosity moving, sources on).
Then, on each transport solver's own matrix and each field's own right-hand side:

* ``ours``: the model's solve as configured (right-hand side from the stored
  matrices, Krylov solve, balance correction, converged-reason and NaN checks), for
  every field that uses the solver (species sharing one operator solve in turn),
  each repeat from the projected-guess history the run had before that step
  (``fem/guess.py``: after the step it holds the step's own answer);
* ``gamg``: a bare PETSc CG + GAMG solve of the same systems at the same tolerance
  and norm from the last level (the plain warm start), preconditioner set up once
  (its set-up time apart);
* ``lu``: a stored MUMPS factorisation of the same matrix (factorisation time apart)
  and one triangular solve per right-hand side;

with the iterations and the balance error ``|zᵀ(b − A x)| / |zᵀ b|`` (z the
free-dof indicator: the step's global balance) of each. Times are the maximum over
ranks, per model step (all fields of the solver together); the amortised columns add
a set-up (ours and bare GAMG: the GAMG set-up; LU: the factorisation) once per
``steps_per_refresh`` steps, since each coefficient refresh needs a new one (the
medium baseline refreshes 16 times in 112 steps: ``provenance.json → solvers →
assemblies``; ours uses the bare GAMG set-up time, same options on the same
matrix). The elasticity solve is
timed separately (each solve follows a stiffness change: assembly + set-up + solve).
"""

from __future__ import annotations

import time
from typing import Any

from mpi4py import MPI
from petsc4py import PETSc

from scaffoldfem.config.study import Study
from scaffoldfem.fem.solver import LinearSolver
from scaffoldfem.geometry.meshing import ensure_mesh, load_mesh
from scaffoldfem.model.coupled import CoupledModel

__all__ = ["bench_floor", "table"]


def _solvers(model: CoupledModel) -> list[tuple[str, LinearSolver, list]]:
    """(label, solver, [(u, u_old, substitute), ...]) of every linear transport solver."""
    out = []
    if model.ros.enabled:
        out.append(("ROS", model.ros.solver, [(model.ros.r, model.ros.r_old, None)]))
    for e in model.enzymes.members:
        out.append((e.name, e.solver, [(e.m, e.m_old, None)]))
    for sp in model.species.members:
        if sp.shares is None and isinstance(sp.solvers.get("be"), LinearSolver):
            group = [m for m in model.species.members if (m.shares or m) is sp]
            systems = [(m.c, m.c_old, None if m is sp else m.substitute()) for m in group]
            out.append(("+".join(m.name for m in group), sp.solvers["be"], systems))
    return out


def _balance(A: PETSc.Mat, b: PETSc.Vec, x: PETSc.Vec, z: PETSc.Vec) -> float:
    r = b.duplicate()
    A.mult(x, r)
    r.aypx(-1.0, b)
    num, den = r.dot(z), b.dot(z)
    r.destroy()
    return abs(num) / abs(den) if den else 0.0


def _bare(comm: Any, A: PETSc.Mat, opts: dict[str, Any]) -> tuple[PETSc.KSP, float]:
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    prefix = f"sfem_floor_{id(ksp)}_"
    ksp.setOptionsPrefix(prefix)
    db = PETSc.Options(prefix)
    for k, v in opts.items():
        db[k] = v
    ksp.setFromOptions()
    ksp.setInitialGuessNonzero(ksp.getType() != PETSc.KSP.Type.PREONLY)
    tic = time.perf_counter()
    ksp.setUp()
    setup = time.perf_counter() - tic
    for k in opts:
        del db[k]
    return ksp, setup


def _time_systems(comm: Any, fn, n: int, x0: list[PETSc.Vec], repeat: int):
    """Best time (max over ranks) of ``fn(i, x)`` for every system ``i`` once, its
    iterations and the solutions (``fn`` returns (iterations, seconds))."""
    best, its, xs = float("inf"), [], []
    for _ in range(repeat):
        for x in xs:
            x.destroy()
        xs = [x.copy() for x in x0]
        comm.barrier()
        runs = [fn(i, xs[i]) for i in range(n)]
        its = [r[0] for r in runs]
        best = min(best, comm.allreduce(sum(r[1] for r in runs), op=MPI.MAX))
    return best, its, xs


def _timed_ksp(ksp: PETSc.KSP, rhs: list[PETSc.Vec]):
    def run(i: int, x: PETSc.Vec) -> tuple[int, float]:
        tic = time.perf_counter()
        ksp.solve(rhs[i], x)
        return ksp.getIterationNumber(), time.perf_counter() - tic
    return run


def bench_floor(comm: Any, resolution: str = "medium", warm_steps: int = 4,
                repeat: int = 3, transport: dict[str, Any] | None = None,
                steps_per_refresh: float = 7.0) -> dict[str, Any]:
    """Per transport solver: ours vs bare GAMG vs stored factorisation (see module doc).

    Returns:
        ``{"solvers": [row, ...], "mechanics": {...}, "vertices": n}``, the same on
        every rank; a row has ``field``, ``systems``, ``s_ours``, ``its_ours``,
        ``s_gamg``, ``its_gamg``, ``s_gamg_setup``, ``s_lu``, ``s_lu_factor``,
        ``balance_ours``, ``balance_gamg``, ``balance_lu`` and ``ratio`` (ours / the
        faster floor solve), ``ratio_amortised`` (the same with a set-up every
        ``steps_per_refresh`` steps). ``transport``: ``[solver.transport]`` options.
    """
    study = Study.default({"geometry.resolution": resolution, "axons.enabled": False,
                           "output.figures": False, "solver": {"transport": transport or {}}})
    mesh, cells, facets = load_mesh(ensure_mesh(study.geometry, comm), comm,
                                    ghost_mode="shared_facet")
    rows = []
    with CoupledModel(study, mesh, cells, facets) as model:
        mech_tic = time.perf_counter()
        model.ensure_mechanics()
        mech_first = comm.allreduce(time.perf_counter() - mech_tic, op=MPI.MAX)
        for _ in range(warm_steps - 1):
            model.step(study.time.dt)
        # Each "ours" repeat starts from the projected-guess history the run had before
        # the last step (after it, the history holds the step's own answer).
        before = {label: s.history() for label, s, _ in _solvers(model)}
        model.step(study.time.dt)
        for label, solver, systems in _solvers(model):
            if solver._stale:
                solver.assemble_matrix()
            # The last step's systems, each started (as in the run) from the level before.
            rhs, x0 = [], []
            for _u, u_old, sub in systems:
                rhs.append(solver.assemble_rhs(sub).copy())
                x0.append(u_old.x.petsc_vec.copy())
            z = solver._balance.z

            after = solver.history()

            def ours(i: int, x: PETSc.Vec, _s=solver, _sys=systems,
                     _h=before[label]) -> tuple[int, float]:
                u, _, sub = _sys[i]
                _s.restore_history(_h)
                keep, t0 = u.x.petsc_vec.copy(), _s.seconds
                x.copy(u.x.petsc_vec)  # the initial guess
                its = _s.solve(0.0, u=u, substitute=sub)  # times itself: no copies
                u.x.petsc_vec.copy(x)
                keep.copy(u.x.petsc_vec)  # leave the model as it was
                keep.destroy()
                return its, _s.seconds - t0

            n = len(systems)
            s_ours, its_ours, x_ours = _time_systems(comm, ours, n, x0, repeat)
            gamg, gamg_setup = _bare(comm, solver.A, dict(solver.options))
            s_gamg, its_gamg, x_gamg = _time_systems(comm, _timed_ksp(gamg, rhs), n, x0, repeat)
            lu, lu_factor = _bare(comm, solver.A, {"ksp_type": "preonly", "pc_type": "lu",
                                                   "pc_factor_mat_solver_type": "mumps"})
            s_lu, _, x_lu = _time_systems(comm, _timed_ksp(lu, rhs), n, x0, repeat)
            rows.append({
                "field": label, "systems": len(systems), "s_ours": s_ours,
                "its_ours": sum(its_ours) / len(its_ours), "s_gamg": s_gamg,
                "its_gamg": sum(its_gamg) / len(its_gamg),
                "s_gamg_setup": comm.allreduce(gamg_setup, op=MPI.MAX), "s_lu": s_lu,
                "s_lu_factor": comm.allreduce(lu_factor, op=MPI.MAX),
                **{f"balance_{k}": max(_balance(solver.A, b, x, z)
                                       for b, x in zip(rhs, xs, strict=True))
                   for k, xs in (("ours", x_ours), ("gamg", x_gamg), ("lu", x_lu))},
                "ratio": s_ours / min(s_gamg, s_lu),
            })
            row, r = rows[-1], 1.0 / steps_per_refresh
            row["s_ours_amortised"] = s_ours + r * row["s_gamg_setup"]
            row["s_gamg_amortised"] = s_gamg + r * row["s_gamg_setup"]
            row["s_lu_amortised"] = s_lu + r * row["s_lu_factor"]
            row["ratio_amortised"] = row["s_ours_amortised"] / min(
                row["s_gamg_amortised"], row["s_lu_amortised"])
            for v in (*rhs, *x0, *x_ours, *x_gamg, *x_lu):
                v.destroy()
            gamg.destroy()
            solver.restore_history(after)
            lu.destroy()
        mech = model.mechanics
        # A re-solve after a stiffness change, as in the run: new E, same sparsity.
        mech.material.E.x.array[:] *= 0.9
        ms = mech.solver
        a0, s0 = ms.assembly_seconds, ms.seconds
        tic = time.perf_counter()
        its = mech.advance(model.t, force=True).get("mechanics", 0)
        mech_again = comm.allreduce(time.perf_counter() - tic, op=MPI.MAX)
        mech_assembly = comm.allreduce(ms.assembly_seconds - a0, op=MPI.MAX)
        mech_solve = comm.allreduce(ms.seconds - s0, op=MPI.MAX)
        vertices = mesh.topology.index_map(0).size_global
    return {"vertices": vertices, "solvers": rows, "steps_per_refresh": steps_per_refresh,
            "mechanics": {"s_first_solve": mech_first, "s_resolve": mech_again,
                          "s_resolve_assembly": mech_assembly,
                          "s_resolve_setup_and_solve": mech_solve, "iterations": its}}


def table(r: dict[str, Any]) -> str:
    """The rows as a Markdown table (ms per model step, all fields of a solver)."""
    lines = [f"{r['vertices']} vertices; times in ms per model step (max over ranks)", "",
             "| field | rhs | ours ms | its | GAMG ms | its | GAMG setup ms | LU ms | "
             "LU factor ms | ours/floor | balance ours | GAMG | LU |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for w in r["solvers"]:
        lines.append(
            f"| {w['field']} | {w['systems']} | {1e3 * w['s_ours']:.1f} | {w['its_ours']:.1f} | "
            f"{1e3 * w['s_gamg']:.1f} | {w['its_gamg']:.1f} | {1e3 * w['s_gamg_setup']:.0f} | "
            f"{1e3 * w['s_lu']:.1f} | {1e3 * w['s_lu_factor']:.0f} | {w['ratio']:.2f} | "
            f"{w['balance_ours']:.1e} | {w['balance_gamg']:.1e} | {w['balance_lu']:.1e} |")
    lines += ["", f"with a set-up every {r['steps_per_refresh']:g} steps (a coefficient "
              "refresh), ms per model step:", "",
              "| field | ours | GAMG | LU | ours/floor |", "|---|---|---|---|---|"]
    for w in r["solvers"]:
        lines.append(
            f"| {w['field']} | {1e3 * w['s_ours_amortised']:.1f} | "
            f"{1e3 * w['s_gamg_amortised']:.1f} | {1e3 * w['s_lu_amortised']:.1f} | "
            f"{w['ratio_amortised']:.2f} |")
    total = {k: sum(w[f"s_{k}_amortised"] for w in r["solvers"]) for k in ("ours", "gamg", "lu")}
    lines.append(f"| all transport | {1e3 * total['ours']:.1f} | {1e3 * total['gamg']:.1f} | "
                 f"{1e3 * total['lu']:.1f} | "
                 f"{total['ours'] / min(total['gamg'], total['lu']):.2f} |")
    m = r["mechanics"]
    lines.append("")
    lines.append(f"elasticity: first solve {m['s_first_solve']:.2f} s; a re-solve after a "
                 f"10 % stiffness change {m['s_resolve']:.2f} s (assembly "
                 f"{m['s_resolve_assembly']:.2f} s, GAMG set-up + {m['iterations']} CG "
                 f"iterations {m['s_resolve_setup_and_solve']:.2f} s)")
    return "\n".join(lines)
