"""The cheap cue preparation of the tracer (scaffoldfem.axons.cues, fem.smoothing).

What makes the tracing phase cheap must not change what the cones see: the sparse
nodal gradient equals the cellwise definition, one shared Helmholtz filter gives each
cue its own solution (to the solver tolerance, checked against a direct solve), a
solve deferred until a cone moves smooths the same accepted input, and the accepted
inputs (the re-smoothing history) survive a checkpoint, so a resumed run is exact.
Serial and under ``mpiexec -n 2``. Timings are in ``scaffoldfem bench tracing``.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np

import scaffoldfem  # noqa: F401
from dolfinx import fem, la
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.axons import guidance as am
from scaffoldfem.axons.fields import Q_TOLERANCE
from scaffoldfem.axons.tracer import GrowthFields, Tracer
from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.fem.locate import Locator
from scaffoldfem.fem.smoothing import HelmholtzFilter, NodalGradient
from scaffoldfem.regions import cell_tag


def _box(comm, n=(6, 6, 12)):
    msh = dmesh.create_box(comm, [[-1, -1, -2], [1, 1, 2]], list(n), dmesh.CellType.tetrahedron,
                           ghost_mode=dmesh.GhostMode.shared_facet)
    loc = Locator(msh)
    z = loc.midpoints()[:, 2]
    tag = np.where(np.abs(z) < 0.4, cell_tag("scar"), cell_tag("white_matter")).astype(np.int32)
    tags = dmesh.meshtags(msh, 3, np.arange(loc.num_cells, dtype=np.int32), tag)
    return msh, loc, tags


def _reference_gradient(loc, nodal):
    """Volume-weighted mean of the cellwise gradients at each node, cell by cell."""
    own = np.arange(loc.num_owned)
    g = loc.gradient(nodal, own)
    vec = la.vector(loc.mesh.geometry.index_map(), 4)
    arr = vec.array.reshape(-1, 4)
    arr[:] = 0.0
    for c in own:
        for node in loc.nodes[c]:
            arr[node, :3] += loc.volumes[c] * g[c]
            arr[node, 3] += loc.volumes[c]
    vec.scatter_reverse(la.InsertMode.add)
    vec.scatter_forward()
    arr = vec.array.reshape(-1, 4)[: len(loc.x)]
    return arr[:, :3] / arr[:, 3:]


def test_sparse_nodal_gradient_is_the_cellwise_mean(comm):
    """Exact for a linear field, equal to the cell-by-cell sum for any field, and
    several fields at once give what each gives alone."""
    _msh, loc, _ = _box(comm, n=(4, 4, 8))
    G = NodalGradient(loc)
    x = loc.x
    lin = 0.3 + 1.5 * x[:, 0] - 2.0 * x[:, 1] + 0.25 * x[:, 2]
    assert np.allclose(G(lin), [1.5, -2.0, 0.25], rtol=0, atol=1e-12)
    f = np.sin(2.0 * x[:, 0]) * np.exp(0.5 * x[:, 2]) + x[:, 1] ** 2
    ref = _reference_gradient(loc, f)
    assert np.allclose(G(f), ref, rtol=0, atol=1e-12 * np.abs(ref).max())
    both = G(np.column_stack([f, lin]))
    assert both.shape == (len(x), 2, 3)
    assert np.allclose(both[:, 0], G(f), rtol=0, atol=1e-13 * np.abs(ref).max())
    assert np.allclose(both[:, 1], G(lin), rtol=0, atol=1e-13)


def test_shared_filter_equals_own_filters_and_a_direct_solve(comm):
    """One filter, two inputs each warm-started from its own last result: the same bits
    as one filter per input (the former design), and within the solver tolerance of a
    MUMPS solve of the same system (measured 2.3e-8 relative at worst here: the
    residual tolerance 1e-10 is relative to the right-hand side, not to the field)."""
    msh, loc, _ = _box(comm)
    mid = loc.midpoints()
    a = (np.abs(mid[:, 2]) < 0.4).astype(float)
    b = np.log(np.where(mid[:, 0] < 0.0, 1.0, 0.2) + 0.1 * mid[:, 2] ** 2)
    shared = HelmholtzFilter(msh, 0.5, "test_shared")
    own = {k: HelmholtzFilter(msh, 0.5, f"test_own_{k}") for k in "ab"}
    direct = HelmholtzFilter(msh, 0.5, "test_direct", petsc_options={
        "ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"})
    guess = {"a": fem.Function(shared.V), "b": fem.Function(shared.V)}
    for k in range(3):  # inputs that move from step to step, alternating on one filter
        for key, vals in (("a", a * (1.0 + 0.01 * k)), ("b", b + 0.02 * k * mid[:, 2])):
            got = loc.nodal_values(shared.smooth(vals, guess=guess[key])).copy()
            alone = loc.nodal_values(own[key].smooth(vals)).copy()
            assert np.array_equal(got, alone), (k, key)
            ref = loc.nodal_values(direct.smooth(vals))
            err = comm.allreduce(float(np.abs(got - ref).max()), op=MPI.MAX)
            scale = comm.allreduce(float(np.abs(ref).max()), op=MPI.MAX)
            assert err <= 1e-7 * scale, (k, key, err)
    for f in (shared, direct, *own.values()):
        f.destroy()


def test_cue_filter_guess_saves_iterations_at_the_same_answer(comm):
    """An input that moves smoothly (a log-modulus falling as the scaffold degrades),
    smoothed at each of 8 steps: from the projection on its last results the filter
    takes fewer than half the iterations of the plain warm start (measured 20 vs 73
    on this box), and every result agrees with the plain one to the filter's
    tolerance."""
    msh, loc, _ = _box(comm)
    mid = loc.midpoints()
    inside = np.abs(mid[:, 2]) < 0.5
    proj = HelmholtzFilter(msh, 0.5, "test_guess_on")
    plain = HelmholtzFilter(msh, 0.5, "test_guess_off", petsc_options={"guess_levels": 0})
    u = {f: fem.Function(f.V) for f in (proj, plain)}
    its = {proj: 0, plain: 0}
    for k in range(8):
        q = np.log(np.where(inside, 2.0 * np.exp(-0.1 * k) * (1 + 0.2 * mid[:, 0]), 5.0))
        got = {}
        for f in (proj, plain):
            got[f] = loc.nodal_values(f.smooth(q, guess=u[f])).copy()
            its[f] += f.solver.iterations
        err = comm.allreduce(float(np.abs(got[proj] - got[plain]).max()), op=MPI.MAX)
        assert err <= 1e-7 * comm.allreduce(float(np.abs(got[plain]).max()), op=MPI.MAX)
    assert its[proj] < 0.5 * its[plain], its
    for f in (proj, plain):
        f.destroy()


def _tracer(comm, delay="0 day"):
    msh, loc, tags = _box(comm)
    p = AxonsConfig(count=30, seed=5, seed_offset="0.35 mm", cue_smoothing="0.8 mm",
                    dieback_delay=delay, seeding_window="0.5 day", speed="0.5 mm/day",
                    scar_cspg=1.0, durotaxis_saturation="1e6 kPa")
    return Tracer(msh, tags, p, (-0.4, 0.4), [], locator=loc)


def _stiffness(tr, k):
    """A DG0 modulus whose log moves by 0.4 Q_TOLERANCE per step: the cue is
    re-smoothed every third step, and in between its accepted input is older."""
    V = fem.functionspace(tr.mesh, ("DG", 0))
    E = fem.Function(V)
    mid = tr.loc.midpoints()
    dm = np.asarray(V.dofmap.list)[: tr.loc.num_cells, 0]
    E.x.array[dm] = np.where(mid[:, 0] < 0.0, 1.0, 0.2) * np.exp(0.4 * Q_TOLERANCE * k)
    return GrowthFields({}, stiffness=E)


def _steps(tr, k0, k1, dt=0.5, eager=False):
    for k in range(k0, k1):
        tr.advance(k * dt, (k + 1) * dt, _stiffness(tr, k))
        if eager:  # what the tracer did before: solve every accepted input at once
            tr.fields.ensure()


def _same(comm, a, b, exact):
    Ta, Tb = a.trajectories(), b.trajectories()
    assert a.metrics()["states"] == b.metrics()["states"]
    if comm.rank == 0:
        for k in ("axon_id", "step", "state"):
            assert np.array_equal(Ta[k], Tb[k]), k
        for k in ("t", "x", "speed"):
            if exact:
                assert np.array_equal(Ta[k], Tb[k]), k
            else:
                assert np.allclose(Ta[k], Tb[k], rtol=0, atol=1e-7), k


def test_solves_wait_for_moving_cones_and_smooth_the_same_input(comm):
    """During the die-back delay no cone moves and nothing is solved; the first solve
    smooths the input accepted by the re-smoothing rule, so the paths are those of
    solving at every step (to the filter's tolerance) with fewer solves."""
    lazy, eager = _tracer(comm, delay="2 day"), _tracer(comm, delay="2 day")
    for tr in (lazy, eager):
        tr.seed(0.0)
    _steps(lazy, 0, 4)
    _steps(eager, 0, 4, eager=True)
    assert lazy.fields.cues.solves() == 0 and eager.fields.cues.solves() == 3
    assert np.array_equal(lazy.fields.cues.src["q"][1], eager.fields.cues.src["q"][1])
    _steps(lazy, 4, 10)
    _steps(eager, 4, 10, eager=True)
    assert lazy.fields.cues.solves() < eager.fields.cues.solves()
    assert np.array_equal(lazy.fields.cues.src["q"][1], eager.fields.cues.src["q"][1])
    assert lazy.metrics()["seeded"] == 30 and comm.allreduce(int(lazy.c["k"].sum())) > 0
    _same(comm, lazy, eager, exact=False)
    n = eager.fields.cues.solves()
    eager.destroy()  # a run frees the filters before `bench tracing_run` reads the count
    assert eager.fields.cues.solves() == n > 0


def test_resume_keeps_the_cue_history(comm):
    """Checkpointed when the modulus has moved by less than the tolerance since the cue
    was last smoothed: the restored tracer keeps the older accepted input (it does not
    smooth the current one) and continues bit-identically on the same ranks; restored
    on one rank it agrees to the filter's tolerance."""
    whole = _tracer(comm)
    whole.seed(0.0)
    _steps(whole, 0, 10)
    first = _tracer(comm)
    first.seed(0.0)
    _steps(first, 0, 5)
    accepted = first.fields.cues.src["q"][1]
    sat = first.p.durotaxis_saturation
    _kind, current = first.fields._source(_stiffness(first, 4).stiffness,
                                          lambda a: am.saturated_log_modulus(a, sat), "q")
    moved = comm.allreduce(float(np.abs(current - accepted)[: first.loc.num_owned].max()),
                           op=MPI.MAX)
    assert 0.0 < moved <= Q_TOLERANCE  # the cue smooths an older input than the current one
    state = comm.bcast(first.get_state())
    assert {"cue_s_src", "cue_q_src", "cue_q_out", "cue_q_done", "cue_q_h0"} <= set(state)
    for where in (comm, MPI.COMM_SELF):
        again = _tracer(where)
        again.set_state(state)
        if where is comm:
            assert np.array_equal(again.fields.cues.src["q"][1], accepted)
            assert again.fields.cues.ready  # the saved result is used, not re-solved
        _steps(again, 5, 10)
        _same(comm, whole, again, exact=where is comm or comm.size == 1)
