"""PETSc options of the solver presets, as plain data (no PETSc here).

:mod:`scaffoldfem.fem.solver` puts them into PETSc's options database under each
solver's own prefix; user options from the study are merged over them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scaffoldfem.config.study_checks import GUESS_KEY

__all__ = ["PRESETS", "SMALL_SYSTEM", "SNES_DEFAULTS", "merged_options"]

#: Default PETSc options per preset (user options are merged over these).
PRESETS: dict[str, dict[str, Any]] = {
    "transport": {
        "ksp_type": "cg",
        "pc_type": "gamg",
        # The step's global balance no longer rests on the Krylov tolerance: the
        # solver's Galerkin correction (LinearSolver ``conserve``) makes it exact to
        # rounding, so the tolerance is set for the field's accuracy (1e-8 relative,
        # CG's own preconditioned norm). Measured on the coarse baseline: 7-10
        # iterations instead of 10-16 at 1e-10 in the true residual (docs/model.md §8).
        "ksp_rtol": 1.0e-8,
        "ksp_atol": 1.0e-30,
        "ksp_norm_type": "preconditioned",
        "ksp_max_it": 500,
        # Matrix changes (new Δt, new D from degradation) keep the sparsity:
        # reuse the aggregation/prolongation, recompute only coarse operators.
        "pc_gamg_reuse_interpolation": True,
        "pc_gamg_threshold": 0.02,
    },
    "elasticity": {
        "ksp_type": "cg",
        "pc_type": "gamg",
        "pc_gamg_type": "agg",
        "pc_gamg_threshold": 0.02,
        "pc_gamg_coarse_eq_limit": 1000,
        "ksp_rtol": 1.0e-9,
        "ksp_max_it": 1000,
        # Every re-solve follows a stiffness change on the same sparsity: keep the
        # aggregates and prolongators, recompute only the Galerkin coarse operators.
        "pc_gamg_reuse_interpolation": True,
        # Aggressive (square-graph) coarsening on the first two levels: the Galerkin
        # PtAP products of levels 1-2 dominated the set-up at a 1e5 stiffness
        # contrast. Measured (medium, 2 ranks, 5 re-solves with softening E, PETSc
        # -log_view): PCSetUp 2.15e10 -> 7.9e9 flops, KSPSolve total 3.0e10 ->
        # 1.9e10 flops, the same 12-18 iterations and displacement norm to 1e-10.
        # 1 or 3+ levels, or a lower threshold, measured no better.
        "pc_gamg_aggressive_coarsening": 2,
        # SPD operator: CG gives the sharper eigenvalue estimate for Chebyshev.
        "mg_levels_esteig_ksp_type": "cg",
    },
    "mumps": {
        "ksp_type": "preonly",
        "pc_type": "lu",
        "pc_factor_mat_solver_type": "mumps",
    },
}

# Reaction fronts (tissue ingrowth, Fisher-KPP): a pulled front is set by its
# leading edge, where f ~ 0, so the solve is tight in the true residual and gets
# no balance correction (a uniform shift there, however small, would seed growth
# ahead of the front and speed it up: measured +3 % in test_ingrowth).
PRESETS["front"] = {**PRESETS["transport"], "ksp_rtol": 1.0e-10,
                    "ksp_norm_type": "unpreconditioned"}

#: Options a preset takes for small systems: fewer global equations than the bound
#: for one rank / for more ranks. Elasticity: unsmoothed aggregation
#: (``pc_gamg_agg_nsmooths 0``) halves the cost of GAMG's Galerkin set-up (no
#: smoothed prolongator) at ~2-3x the CG iterations; each iteration's reductions and
#: halo exchanges make that lose sooner in parallel. Measured per re-solve after a
#: random ≤20 % change of E, preset → these options: one rank, 6 mm cord 24k / 157k
#: equations 0.65-0.83 → 0.45-0.52 / 4.5 → 3.6-3.8 s, full `coarse` cord 81k 2.2-2.3
#: → 1.6 s; 2 ranks, 6 mm cord 24k 0.33-0.39 → 0.20-0.25 s, `coarse` 81k 0.94-1.06 →
#: 1.13-1.31 s, medium 216k 3.6 → 4.0 s (at rtol 1e-9; 25 → 67 its).
#: rtol 1e-10: at 1e-9 the unsmoothed solve moved the TINY run's von Mises p95 by
#: 1.1e-6 between 1 and 2 ranks (test_run allows 1e-6; the preset stayed inside).
#: A mesh between the bounds thus solves with other options on 1 and on 2 ranks: its
#: results agree to the solver tolerance, not bit for bit.
SMALL_SYSTEM: dict[str, tuple[int, int, dict[str, Any]]] = {
    "elasticity": (160_000, 40_000, {"pc_gamg_agg_nsmooths": 0, "ksp_rtol": 1.0e-10}),
}

#: SNES defaults for the nonlinear (uptake) path; KSP options come from a preset.
SNES_DEFAULTS: dict[str, Any] = {
    "snes_type": "newtonls",
    "snes_linesearch_type": "basic",
    "snes_rtol": 1.0e-10,
    "snes_atol": 1.0e-14,
    "snes_max_it": 30,
}


def merged_options(preset: str, user: Mapping[str, Any] | None = None,
                   size: int | None = None, ranks: int = 1) -> dict[str, Any]:
    """Preset defaults with ``user`` merged over them.

    If the user switches to a different ``pc_type``, the preset's GAMG and
    multigrid-level options are dropped (they would be unused).

    Args:
        preset: Key of :data:`PRESETS`.
        user: PETSc options without prefix (``{"ksp_rtol": 1e-8}``); a ``preset`` key
            names another preset to start from.
        size: Global number of equations; below the preset's :data:`SMALL_SYSTEM`
            bound for ``ranks`` its small-system options apply, unless ``user``
            sets one of them or another ``pc_type``. None: ignored.
        ranks: Number of MPI ranks sharing the system.
    """
    user = dict(user or {})
    # ``preset = "mumps"`` in a [solver.<field>] section replaces the field's preset.
    preset = str(user.pop("preset", preset))
    # ``guess_levels`` is the LinearSolver's own (fem/guess.py), not a PETSc option.
    user.pop(GUESS_KEY, None)
    if preset not in PRESETS:
        raise ValueError(f"unknown solver preset {preset!r}; one of {', '.join(PRESETS)}")
    opts = dict(PRESETS[preset])
    serial_bound, parallel_bound, small = SMALL_SYSTEM.get(preset, (0, 0, {}))
    # The small-system options are one choice (the rtol belongs to the unsmoothed
    # aggregation): a user who picks another preconditioner or sets any of them
    # starts from the plain preset instead.
    own_pc = "pc_type" in user and user["pc_type"] != opts.get("pc_type")
    if (size is not None and size < (serial_bound if ranks == 1 else parallel_bound)
            and not own_pc and not set(small) & set(user)):
        opts.update(small)
    if own_pc:
        opts = {k: v for k, v in opts.items() if not k.startswith(("pc_gamg", "mg_"))}
    opts.update(user)
    return opts
