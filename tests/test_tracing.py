"""Growth-cone tracing (scaffoldfem.axons.tracer) in prescribed fields on box meshes.

Box [-1,1]^2 x [-2,2] mm, cord axis z. Every test runs serially and under
``mpiexec -n 2``; trajectories are compared on all ranks through collective
outputs, so every rank takes the same decisions. The calibration of the growth-cone
model itself (persistence, stationary law, integrator order, cues) is in
``tests/test_growth_cone.py``.
"""

from __future__ import annotations  # noqa: I001  (scaffoldfem before dolfinx)

import numpy as np
import pytest

import scaffoldfem  # noqa: F401
from dolfinx import fem
from dolfinx import mesh as dmesh
from mpi4py import MPI

from scaffoldfem.axons import guidance as am
from scaffoldfem.config.axons import AxonsConfig
from scaffoldfem.errors import StudyError
from scaffoldfem.fem.locate import Locator
from scaffoldfem.regions import cell_tag
from scaffoldfem.axons.tracer import EXITED, GROWING, STALLED, GrowthFields, Tracer

#: Every cue off, no die-back delay, no noise (straight paths): tests switch on what they test.
OFF = dict(cues={"chemotaxis": "0 1/mm", "guidance": {}, "durotaxis": 0.0,
                 "scar_repulsion": 0.0},
           dieback_delay="0 day", seeding_window="0 day", persistence_length="1e18 mm",
           stiffness_half_speed="0 kPa")


def setup(comm, region=lambda m: np.full(len(m), cell_tag("white_matter")), n=(8, 8, 16),
          ghost=dmesh.GhostMode.shared_facet):
    """Box mesh, its locator and region tags from a function of the cell midpoints."""
    msh = dmesh.create_box(comm, [[-1, -1, -2], [1, 1, 2]], list(n), dmesh.CellType.tetrahedron,
                           ghost_mode=ghost)
    loc = Locator(msh)
    tag = np.asarray(region(loc.midpoints()), dtype=np.int32)
    tags = dmesh.meshtags(msh, 3, np.arange(loc.num_cells, dtype=np.int32), tag)
    return msh, loc, tags


def cfg(cues=None, **kw) -> AxonsConfig:
    """Config with every cue off except those given (``cues`` merged over OFF's)."""
    base = {**OFF, **kw}
    base["cues"] = {**OFF["cues"], **(cues or {})}
    return AxonsConfig(**base)


def p1(msh, f):
    """P1 function with f evaluated at the mesh nodes themselves.

    (``Function.interpolate`` pushes reference points forward, which differs in
    the last bit between partitions; the 1-vs-N-rank comparison needs fields
    that are bit-identical.)
    """
    V = fem.functionspace(msh, ("Lagrange", 1))
    u = fem.Function(V)
    nodes = np.asarray(msh.geometry.dofmaps[0])
    u.x.array[np.asarray(V.dofmap.list).ravel()] = f(msh.geometry.x[nodes.ravel()].T)
    return u


def dg0(msh, f):
    """DG0 function with f evaluated at the cell centroids (bit-identical on any partition)."""
    V = fem.functionspace(msh, ("DG", 0))
    u = fem.Function(V)
    p = msh.geometry.x[np.asarray(msh.geometry.dofmaps[0])]
    mid = 0.25 * (p[:, 0] + p[:, 1] + p[:, 2] + p[:, 3])
    u.x.array[np.asarray(V.dofmap.list)[:, 0]] = f(mid.T)
    return u


def seeds(n, rng, lo=(-0.5, -0.5, -1.5), hi=(0.5, 0.5, -1.0)):
    return rng.uniform(lo, hi, (n, 3))


def run(tracer, fields, days, t0=0.0, dt=0.5):
    t = t0
    while t < t0 + days - 1e-12:
        tracer.advance(t, t + dt, fields)
        t += dt
    return tracer.final()


def headings(tracer):
    """Current headings of all cones by id (collective)."""
    c = tracer.c
    rows = np.vstack(tracer.comm.allgather(np.column_stack([c["id"], c["d"]])))
    return rows[np.argsort(rows[:, 0]), 1:]


def test_rng_counter_based():
    ids = np.arange(1000)
    u = am.uniforms(7, ids, 3, 4)
    assert np.array_equal(u[500:], am.uniforms(7, ids[500:], 3, 4))  # batch independent
    assert not np.array_equal(u, am.uniforms(7, ids, 4, 4))
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    g = am.normals(7, np.arange(20000), 0, 3)
    assert abs(g.mean()) < 0.02 and abs(g.std() - 1) < 0.02


def test_nematic_guidance_never_reverses():
    """κ (a·d) P(d) a turns d to the nearer of ±a: a reversed cone stays reversed."""
    a = np.tile([0.0, 0.0, 1.0], (4, 1))
    th = np.deg2rad([20.0, 160.0, 90.0, 0.0])
    d = np.column_stack([np.sin(th), np.zeros(4), np.cos(th)])
    b = am.drift(d, np.zeros((4, 3)), np.full(4, 2.0), a)
    assert b[0, 0] < 0 and b[1, 0] < 0  # both towards the axis line: -x at 20° and 160°
    dtheta = b[:, 0] * np.cos(th) - b[:, 2] * np.sin(th)  # d(theta)/ds
    assert dtheta[0] < 0 < dtheta[1]  # 20° -> 0°, 160° -> 180°
    assert np.allclose(np.abs(dtheta[:2]), 2.0 * np.abs(np.cos(th[:2]) * np.sin(th[:2])))
    assert np.allclose(b[2:], 0.0)  # perpendicular (unstable) and aligned: no drift


def test_occupancy_gradient_law():
    c = np.array([1.0, 27.0, 2700.0])
    gp = am.occupancy_gradient(c, np.tile([1.0, 0, 0], (3, 1)), 27.0)
    assert np.allclose(gp[:, 0], 27.0 / (c + 27.0) ** 2)
    # finite difference of p = c/(c+K)
    h = 1e-6
    fd = (am.occupancy(c + h, 27.0) - am.occupancy(c - h, 27.0)) / (2 * h)
    assert np.allclose(gp[:, 0], fd, rtol=1e-6)


GRAD = np.array([1.0, -0.5, 2.0]) / np.linalg.norm([1.0, -0.5, 2.0])


def test_chemotaxis_aligns_with_gradient(comm):
    """Chemotaxis only, no noise: a cone heading up the gradient goes straight; cones
    started in random directions turn up it (a curvature, not a jump)."""
    msh, loc, tags = setup(comm)
    g = GRAD
    c = p1(msh, lambda x: 27.0 + 10.0 * (g[0] * x[0] + g[1] * x[1] + g[2] * x[2]))
    p = cfg({"chemotaxis": "50 1/mm"}, speed="1 mm/day", max_speed="1 mm/day",
            occupancy_speed_gain=0.0)
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF"], locator=loc)
    rng = np.random.default_rng(1)
    n = 30
    start = seeds(n, rng, lo=(-0.3, -0.3, -1.0), hi=(0.3, 0.3, -0.5))
    tr.seed(0.0, start[:10], directions=np.tile(g, (10, 1)))
    tr.seed(0.0, start[10:], directions=rng.normal(size=(n - 10, 3)))
    f = run(tr, GrowthFields({"BDNF": c}), 1.0, dt=0.25)
    d = headings(tr)
    assert np.all(f["length"] > 0.9)
    disp = f["x"][:10] - f["x0"][:10]
    assert np.allclose(disp / np.linalg.norm(disp, axis=1)[:, None], g, atol=1e-9)
    assert np.allclose(f["tortuosity"][:10], 1.0, atol=1e-9)
    assert np.all(d[10:] @ g > 0.9)
    T = tr.trajectories()
    if comm.rank == 0:
        first = np.r_[True, T["axon_id"][1:] != T["axon_id"][:-1]]
        on = T["axon_id"] < 10
        rel = T["x"] - np.repeat(f["x0"], np.diff(T["offsets"]), axis=0)
        assert np.abs(np.cross(rel[on], g)).max() < 1e-9  # every recorded point on the line
        assert len(T["axons"]) == n and np.all(np.diff(T["t"])[~first[1:]] > 0)


def test_chemotaxis_weak_far_above_kd_without_threshold(comm):
    """The same gradient turns cones near K_d, a thousand times less far above K_d
    (occupancy saturates) but not zero: there is no detection threshold."""
    msh, loc, tags = setup(comm)
    lateral = {}
    for c0 in (27.0, 27.0e3):
        c = p1(msh, lambda x, c0=c0: c0 + 5.0 * x[0])
        tr = Tracer(msh, tags, cfg({"chemotaxis": "5 1/mm"}), (-0.3, 0.3), ["BDNF"],
                    locator=loc)
        tr.seed(0.0, seeds(20, np.random.default_rng(2)))
        f = run(tr, GrowthFields({"BDNF": c}), 1.0)
        lateral[c0] = np.mean((f["x"][:, 0] - f["x0"][:, 0]) / f["length"])
    assert lateral[27.0] > 0.005
    assert 0 < lateral[27.0e3] < 1e-3 * lateral[27.0]


def test_shallow_gradient_biases_in_proportion(comm):
    """With noise, a gradient 200x below the half-response level still biases the
    mean lateral displacement (> 3 SE), and twice the gradient gives twice the bias
    (linear response; the same noise draws make the comparison tight)."""
    msh, loc, tags = setup(comm)
    mean = {}
    n = 400
    for slope in (0.0, 0.5, 1.0):
        c = p1(msh, lambda x, s=slope: 27.0 + s * x[0])
        p = cfg({"chemotaxis": "100 1/mm"}, persistence_length="1 mm", seed=5,
                speed="1 mm/day", max_speed="1 mm/day")
        tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF"], locator=loc)
        tr.seed(0.0, seeds(n, np.random.default_rng(3), lo=(-0.1, -0.1, -1.5),
                           hi=(0.1, 0.1, -1.4)))
        f = run(tr, GrowthFields({"BDNF": c}), 1.0)
        dx = f["x"][:, 0] - f["x0"][:, 0]
        mean[slope] = dx.mean()
        if slope == 0.5:
            se = dx.std(ddof=1) / np.sqrt(n)
            assert dx.mean() > 3 * se
    assert abs((mean[1.0] - mean[0.0]) / (mean[0.5] - mean[0.0]) - 2.0) < 0.1


def channel_region(m, r=0.3):
    inside = m[:, 0] ** 2 + m[:, 1] ** 2 < r * r
    return np.where(inside, cell_tag("channel"), cell_tag("scaffold"))


@pytest.mark.parametrize("guided", [True, False])
def test_channel_contact_guidance(comm, guided):
    """Contact guidance only (with noise): cones stay in the channel and follow its axis."""
    msh, loc, tags = setup(comm, channel_region, n=(16, 16, 16))
    guide = {"channel": "20 1/mm"} if guided else {}
    p = cfg({"guidance": guide}, persistence_length="1 mm", seed=9, cue_smoothing="0.4 mm")
    tr = Tracer(msh, tags, p, (-1.0, 1.0), [], locator=loc)
    rng = np.random.default_rng(4)
    n = 40
    r, phi = 0.1 * np.sqrt(rng.uniform(size=n)), rng.uniform(0, 2 * np.pi, n)
    pts = np.column_stack([r * np.cos(phi), r * np.sin(phi), np.full(n, -1.8)])
    tilt = np.deg2rad(30)
    dirs = np.column_stack([np.sin(tilt) * np.cos(phi), np.sin(tilt) * np.sin(phi),
                            np.full(n, np.cos(tilt))])
    tr.seed(0.0, pts, dirs)
    f = run(tr, GrowthFields({}), 8.0, dt=1.0)
    T = tr.trajectories()
    rmax = comm.bcast(np.hypot(T["x"][:, 0], T["x"][:, 1]).max() if comm.rank == 0 else None)
    if guided:
        assert rmax < 0.3  # channel radius 0.3
        assert np.mean(f["alignment"]) > 0.95
        assert np.all(f["length"] > 1.8)
    else:
        assert rmax > 0.5  # without guidance the 30° headings leave the channel
        assert np.mean(f["alignment"]) < 0.92


def scar_region(m, lo=0.2, hi=0.8):
    return np.where((m[:, 2] > lo) & (m[:, 2] < hi), cell_tag("scar"), cell_tag("white_matter"))


def _crossing(comm, level, repulsion, slope, n=100):
    msh, loc, tags = setup(comm, scar_region, n=(8, 8, 32))
    c = p1(msh, lambda x: 27.0 * np.exp(slope * x[2]))
    p = cfg({"chemotaxis": "5 1/mm", "scar_repulsion": repulsion}, scar_cspg=level,
            persistence_length="1 mm", cue_smoothing="0.45 mm", cross_depth="0.3 mm",
            stall_time="1 day", stall_distance="0.02 mm", seed=2, speed="0.5 mm/day")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["NT-3"], locator=loc)
    rng = np.random.default_rng(6)
    tr.seed(0.0, seeds(n, rng, lo=(-0.6, -0.6, -0.6), hi=(0.6, 0.6, -0.5)),
            directions=np.column_stack([rng.normal(0, 0.5, (n, 2)), np.ones(n)]))
    run(tr, GrowthFields({"NT-3": c}), 5.0, dt=1.0)
    return tr.metrics()


def test_scar_inhibition_and_ntf_gradient_monotone(comm):
    """Crossing falls as the scar inhibits more (CSPG level, repulsion) and rises with a
    steeper caudal NTF gradient (c = K_d exp(s z)); three levels each."""
    inhib = [_crossing(comm, lv, rep, 0.5)["crossing_fraction"]
             for lv, rep in ((0.0, 0.0), (1.0, 1.0), (3.0, 2.0))]
    assert inhib[0] > inhib[1] + 0.15 and inhib[1] > inhib[2] + 0.1, inhib
    ntf = [_crossing(comm, 1.0, 1.0, s)["crossing_fraction"] for s in (0.0, 1.0, 3.0)]
    assert ntf[0] + 0.1 < ntf[1] and ntf[1] + 0.1 < ntf[2], ntf


def test_cue_smoothing_refused_on_a_coarse_mesh(comm):
    """A smoothing length under two cell sizes where regions meet: one clear line."""
    msh, loc, tags = setup(comm, scar_region)
    with pytest.raises(StudyError) as err:
        Tracer(msh, tags, cfg(cue_smoothing="0.1 mm"), (-0.3, 0.3), [], locator=loc)
    assert len(err.value.lines) == 1 and err.value.lines[0].startswith("axons.cue_smoothing:")
    assert "refine the mesh" in err.value.lines[0]
    Tracer(msh, tags, cfg(cue_smoothing="0.6 mm"), (-0.3, 0.3), [], locator=loc)


def cord_region(m):
    """Cord-like tags: white matter rim, grey core, scar rim, scaffold with a channel, a cyst."""
    r = np.hypot(m[:, 0], m[:, 1])
    z = m[:, 2]
    tag = np.where(r < 0.45, cell_tag("grey_matter"), cell_tag("white_matter"))
    tag = np.where((np.abs(z) < 0.55) & (np.abs(z) >= 0.3), cell_tag("scar"), tag)
    tag = np.where(np.abs(z) < 0.3, np.where(r < 0.3, cell_tag("channel"), cell_tag("scaffold")),
                   tag)
    cyst = (m[:, 0] - 0.55) ** 2 + m[:, 1] ** 2 + (m[:, 2] + 0.1) ** 2 < 0.2**2
    return np.where(cyst, cell_tag("cavity"), tag)


def _full_run(comm, days=6.0, split=None, restart_comm=None, state=None,
              ghost=dmesh.GhostMode.shared_facet, smoothed=True, compiled=True, axis=None,
              **kw):
    """A run with every cue on; optionally checkpointed after ``split`` days and
    restored (on ``restart_comm``, default the same) for the rest. ``smoothed=False``:
    no cue that goes through the Helmholtz filter (no scar, no stiffness);
    ``compiled=False``: the vectorised reference steps; ``axis``: "P1" or "DG0" guidance
    axis tilted in x; ``kw``: further ``[axons]`` settings."""
    msh, loc, tags = setup(comm, cord_region, n=(10, 10, 20), ghost=ghost)
    c1 = p1(msh, lambda x: 27.0 * np.exp(0.8 * x[2]) + 3.0 * x[0])
    c2 = p1(msh, lambda x: 60.0 / (1.0 + x[0] ** 2 + x[1] ** 2 + x[2] ** 2))
    E = dg0(msh, lambda x: np.where(x[0] < 0.0, 1.0, 0.2) + 0.1 * x[2] ** 2)
    p = AxonsConfig(count=60, sensory=True, sensory_count=20, seed=11, seed_offset="0.35 mm",
                    cross_depth="0.4 mm", stall_time="2 day", cue_smoothing="0.5 mm",
                    dieback_delay="0.5 day", seeding_window="1 day", speed="0.5 mm/day",
                    scar_cspg=1.0 if smoothed else 0.0, adaptation=True,
                    adaptation_time="0.5 day", **kw)
    ax = None
    if axis is not None:
        family, degree = ("Lagrange", 1) if axis == "P1" else ("DG", 0)
        ax = fem.Function(fem.functionspace(msh, (family, degree, (3,))))
        ax.interpolate(lambda x: np.array([0.3 * x[2], 0.0 * x[0], 1.0 + 0.0 * x[0]]))
    fields = GrowthFields({"BDNF": c1, "NT-3": c2}, stiffness=E if smoothed else None,
                          guidance_axis=ax)
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF", "NT-3"], locator=loc)
    tr.compiled = compiled
    if state is not None:  # restart on this communicator from a saved state
        tr.set_state(state[1])
        run(tr, fields, days - state[0], t0=state[0])
        return tr
    tr.seed(0.0)
    if split is None:
        run(tr, fields, days)
    else:
        run(tr, fields, split)
        state = comm.bcast(tr.get_state())  # as if read from a checkpoint file
        if restart_comm is not None:
            return _full_run(restart_comm, days, state=(split, state), smoothed=smoothed)
        tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF", "NT-3"], locator=loc)
        tr.compiled = compiled
        tr.set_state(state)
        run(tr, fields, days - split, t0=split)
    return tr


def _compare(comm, serial, par, exact):
    Ts, Tp = serial.trajectories(), par.trajectories()
    ms, mp = serial.metrics(), par.metrics()
    assert ms["seeded"] == mp["seeded"] and ms["crossed"] == mp["crossed"]
    assert ms["states"] == mp["states"]
    if exact:
        assert ms == mp
    if comm.rank == 0:
        for k in ("axon_id", "step", "region", "state", "offsets", "final_state"):
            assert np.array_equal(Ts[k], Tp[k]), k
        for k in ("t", "x", "speed"):
            if exact:
                assert np.array_equal(Ts[k], Tp[k]), k
            else:  # the Helmholtz filter is solved to rtol 1e-10 on each partition
                assert np.allclose(Ts[k], Tp[k], rtol=0, atol=1e-7), k
        for s in ("BDNF", "NT-3"):
            assert np.allclose(Ts["concentration"][s], Tp["concentration"][s], equal_nan=True,
                               rtol=0 if exact else 1e-7, atol=0)
    return ms, Tp


@pytest.mark.parametrize("ghost", [dmesh.GhostMode.shared_facet, dmesh.GhostMode.none])
def test_same_seed_same_trajectories_1_and_n_ranks(comm, ghost):
    """Every recorded point, state and metric the same on COMM_SELF and COMM_WORLD
    (distributed mesh with and without a ghost layer): bit-identical without the
    smoothed cues, to the filter's solver tolerance with them."""
    for smoothed in (False, True):
        serial = _full_run(MPI.COMM_SELF, smoothed=smoothed)
        par = _full_run(comm, ghost=ghost, smoothed=smoothed)
        ms, Tp = _compare(comm, serial, par, exact=not smoothed)
        if comm.size > 1:
            assert comm.allreduce(par.n_migrated) > 0  # cones did change rank
        assert par.graft_metrics() == serial.graft_metrics()
        if comm.rank == 0:
            assert Tp["crossed"].sum() == ms["crossed"]
            # the run exercises the model: cones cross, and visit scar and channel
            assert ms["crossed"] > 0 and ms["seeded"] == 80
            assert {cell_tag("scar"), cell_tag("channel")} <= set(Tp["region"].tolist())
            assert cell_tag("cavity") not in set(Tp["region"].tolist())


@pytest.mark.parametrize(("smoothed", "axis", "stop"), [
    (True, None, False), (False, "P1", False), (True, "DG0", True)])
def test_compiled_steps_follow_the_vectorised_laws(comm, smoothed, axis, stop):
    """The compiled growth-cone steps (scaffoldfem.axons.kernel) give the paths of the
    vectorised laws: same records, steps, regions and states, and positions, times and
    speeds to round-off (exp and log differ in the last bit between NumPy and libm),
    with every cue, adaptation, sensory cones, both kinds of guidance axis and
    stop_at_cross."""
    kw = dict(smoothed=smoothed, axis=axis, stop_at_cross=stop)
    ref = _full_run(comm, compiled=False, **kw)
    new = _full_run(comm, **kw)
    Tr, Tn = ref.trajectories(), new.trajectories()
    mr = ref.metrics()
    assert mr["states"] == new.metrics()["states"] and mr["crossed"] > 0
    if comm.rank == 0:
        for k in ("axon_id", "step", "region", "state", "offsets", "final_state"):
            assert np.array_equal(Tr[k], Tn[k]), k
        for k in ("t", "x", "speed"):
            assert np.allclose(Tr[k], Tn[k], rtol=0, atol=1e-11), k
        assert len(Tr["t"]) > 1000


@pytest.mark.parametrize("where", ["same", "serial"])
def test_checkpoint_restart_is_exact(comm, where):
    """get_state/set_state mid-run changes nothing (adaptation levels and graft flags
    included), restored on the same communicator or (N -> 1 ranks) on COMM_SELF."""
    for smoothed in (False, True):
        a = _full_run(comm, days=4.0, smoothed=smoothed)
        b = _full_run(comm, days=4.0, split=2.0, smoothed=smoothed,
                      restart_comm=MPI.COMM_SELF if where == "serial" else None)
        exact = not smoothed or where == "same" or comm.size == 1
        _compare(comm, a, b, exact=exact)
        ga, gb = a.graft_metrics(), b.graft_metrics()
        assert ga == gb and ga["graft_entered"] > 0


def test_default_seeding_regions_sensory_and_start_times(comm):
    """The injury's populations: descending and ascending planes in white matter, start
    times stratified over [delay, delay + window], the same on any rank count; a cone
    does not move before its start."""
    msh, loc, tags = setup(comm, cord_region, n=(10, 10, 20))
    p = AxonsConfig(count=50, sensory=True, seed=4, seed_offset="0.35 mm", cue_smoothing="0.5 mm",
                    dieback_delay="5 day", seeding_window="4 day")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
    assert tr.seed(0.0) == 100
    f = tr.final()
    desc = f["sense"] > 0
    assert desc.sum() == 50
    assert np.allclose(f["x0"][desc, 2], -0.65) and np.allclose(f["x0"][~desc, 2], 0.65)
    r = np.hypot(f["x0"][:, 0], f["x0"][:, 1])
    assert np.all(r > 0.4)  # white matter only (grey core r < 0.45 by cell midpoints)
    _owner, cell = loc.locate_global(f["x0"])
    reg = np.where(cell >= 0, tr.region[np.maximum(cell, 0)], 0)
    tot = np.zeros_like(reg)
    comm.Allreduce(reg, tot)
    assert np.all(tot == cell_tag("white_matter"))
    for pop in (desc, ~desc):  # one start per 4/50 day bin
        ts = np.sort(f["t_seed"][pop])
        assert np.all((ts >= 5.0) & (ts <= 9.0))
        assert np.array_equal(np.floor((ts - 5.0) / (4.0 / 50)), np.arange(50))
    # reproducible from the seed, on any number of ranks
    msh1, loc1, tags1 = setup(MPI.COMM_SELF, cord_region, n=(10, 10, 20))
    tr1 = Tracer(msh1, tags1, p, (-0.3, 0.3), [], locator=loc1)
    tr1.seed(0.0)
    f1 = tr1.final()
    assert np.array_equal(f1["x0"], f["x0"]) and np.array_equal(f1["t_seed"], f["t_seed"])
    run(tr, GrowthFields({}), 5.0, dt=1.0)
    assert np.all(tr.final()["length"] == 0.0)
    run(tr, GrowthFields({}), 2.0, t0=5.0, dt=1.0)
    g = tr.final()
    started = g["t_seed"] < 7.0
    assert np.all(g["length"][~started] == 0.0) and np.all(g["length"][started] > 0.0)
    assert started.sum() == 50  # half of each population by the stratification


def test_pia_slide_exit_and_stall(comm):
    """Cones aimed through the lateral surface slide along it and exit at the caudal end;
    cones in a strongly inhibiting scar stall after stall_time."""
    msh, loc, tags = setup(comm, lambda m: np.where(m[:, 2] > 0.5, cell_tag("scar"),
                                                    cell_tag("white_matter")))
    kw = dict(speed="1 mm/day", max_speed="1 mm/day", cue_smoothing="0.6 mm",
              arc_step="0.05 mm", stall_time="1 day")
    tr = Tracer(msh, tags, cfg(scar_cspg=0.0, **kw), (-0.3, 0.3), [], locator=loc)
    n = 10
    ys = np.linspace(-0.8, 0.8, n)
    # group A: heading 45° into the x = 1 surface, below the scar (z < 0.5), never reaching it
    pa = np.column_stack([np.full(n, 0.7), ys, np.full(n, -1.9)])
    da = np.tile([1.0, 0.0, 1.0], (n, 1))
    tr.seed(0.0, pa, da)
    f = run(tr, GrowthFields({}), 2.0)
    assert np.all(f["x"][:, 0] <= 1.0 + 1e-9)
    assert np.all(f["x"][:, 0] > 1.0 - 1e-6)  # sliding on the surface
    assert np.allclose(f["x"][:, 1], ys)
    # they slid along +z: path ~ all the time at full speed, no loss at the wall
    assert np.all(f["length"] > 1.9) and np.all(f["state"] == GROWING)
    # group B: descending cones that run into the scar (CSPG level 100: slowed ~200x)
    # and stall
    tr2 = Tracer(msh, tags, cfg(scar_cspg=100.0, **kw), (-0.3, 0.3), [], locator=loc)
    tr2.seed(0.0, np.column_stack([np.zeros(n), ys, np.full(n, 0.2)]))
    f2 = run(tr2, GrowthFields({}), 3.0)
    assert np.all(f2["state"] == STALLED)
    assert np.all(f2["x"][:, 2] < 0.6) and np.all(f2["t"] < 2.5)
    # group C: the caudal end ends cones as "exited" at z_max (not lesion-crossing cones)
    tr3 = Tracer(msh, tags, cfg(cross_depth="0.2 mm", scar_cspg=0.0, **kw),
                 (-0.3, 0.3), [], locator=loc)
    tr3.seed(0.0, np.column_stack([np.zeros(n), ys, np.full(n, 1.0)]))
    f3 = run(tr3, GrowthFields({}), 2.0)
    assert np.all(f3["state"] == EXITED) and np.allclose(f3["x"][:, 2], 2.0, atol=1e-6)
    assert np.all(f3["crossed"])  # started beyond lesion + cross_depth: crossed at once
    assert np.allclose(f3["t"], 1.0, atol=0.05 + 1e-9)


def test_barrier_region_not_entered(comm):
    """A cavity in the path: cones slide along its face, round its edge, never into it."""
    def region(m):
        band = (np.abs(m[:, 2]) < 0.25) & (m[:, 0] < 0.25)
        return np.where(band, cell_tag("cavity"), cell_tag("white_matter"))

    msh, loc, tags = setup(comm, region, n=(8, 8, 16))
    p = cfg(speed="0.5 mm/day", max_speed="1 mm/day", cue_smoothing="0.6 mm")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
    n = 20
    pts = seeds(n, np.random.default_rng(1), lo=(-0.9, -0.9, -1.0), hi=(0.2, 0.9, -0.6))
    tr.seed(0.0, pts, np.tile([1.0, 0.0, 1.0], (n, 1)))
    f = run(tr, GrowthFields({}), 3.0, dt=1.0)
    T = tr.trajectories()
    touched = np.zeros(n, dtype=bool)
    if comm.rank == 0:
        assert cell_tag("cavity") not in set(T["region"].tolist())
        for a in range(n):
            xa = T["x"][T["offsets"][a]:T["offsets"][a + 1]]
            touched[a] = np.any((np.abs(xa[:, 2] + 0.25) < 1e-9) & (xa[:, 0] < 0.25))
    touched = comm.bcast(touched)
    aimed = f["x0"][:, 0] + (-0.25 - f["x0"][:, 2]) < 0.25  # straight line meets the cavity
    assert np.array_equal(touched, aimed) and aimed.sum() >= 5
    # those slid along the face (z fixed) round the edge x = 0.25 and went on (or, at the
    # corner of that face with the pia, stayed there)
    assert np.all(f["x"][aimed, 0] > 0.25) and np.allclose(f["x"][aimed, 2], -0.25)
    assert np.all(f["length"] > 1.4)  # nobody was held up: 3 days at 0.5 mm/day, minus pia


def test_metrics_straight_growth_analytic(comm):
    """No cue and no noise: speed = v0, so crossing time and length are analytic."""
    msh, loc, tags = setup(comm)
    p = cfg(cross_depth="0.5 mm")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
    z0 = np.linspace(-1.2, -0.9, 7)
    tr.seed(0.0, np.column_stack([np.zeros(7), np.linspace(-0.5, 0.5, 7), z0]))
    run(tr, GrowthFields({}), 9.0, dt=0.25)
    m = tr.metrics()
    f = tr.final()
    v0 = 0.24
    assert m["seeded"] == 7 and m["crossed"] == 7 and m["crossing_fraction"] == 1.0
    assert np.allclose(f["t_cross"], (0.8 - z0) / v0, atol=0.01 / v0 + 1e-9)
    assert m["median_time_to_cross_day"] == pytest.approx(np.median(f["t_cross"]))
    assert m["mean_length_mm"] == pytest.approx(9.0 * v0, rel=1e-9)
    assert m["mean_tortuosity"] == pytest.approx(1.0) and m["mean_alignment_cos"] == 1.0
    assert m["states"]["crossed"] == 7 and tr.n_crossed() == 7


def _cylinder_meshes(comm):
    """A Gmsh cylinder (radius 1, z in [-2, 2]) as a serial and a distributed mesh
    (Gmsh's default partitioning: no ghost layer)."""
    import gmsh
    from dolfinx.io import gmsh as gmshio

    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("cyl")
        gmsh.model.occ.addCylinder(0, 0, -2, 0, 0, 4, 1.0)
        gmsh.model.occ.synchronize()
        gmsh.model.addPhysicalGroup(3, [1], cell_tag("white_matter"))
        gmsh.option.setNumber("Mesh.CharacteristicLengthMax", 0.2)
        gmsh.option.setNumber("General.NumThreads", 1)
        gmsh.model.mesh.generate(3)
        out = [gmshio.model_to_mesh(gmsh.model, c, 0, gdim=3) for c in (MPI.COMM_SELF, comm)]
    finally:
        gmsh.finalize()
    return out


def test_curved_pia_slide_on_unghosted_gmsh_mesh(comm):
    """Cones aimed out of a cylinder slide along its (curved, faceted) surface, keep
    their speed, never leave it; identical on 1 and N ranks without a ghost layer."""
    p = cfg(speed="1 mm/day", max_speed="1 mm/day", arc_step="0.02 mm")
    n = 24
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    pts = np.column_stack([0.5 * np.cos(ang), 0.5 * np.sin(ang), np.full(n, -1.5)])
    dirs = np.column_stack([np.cos(ang + 0.5), np.sin(ang + 0.5), np.full(n, 0.3)])
    res = []
    for md in _cylinder_meshes(comm):
        tr = Tracer(md.mesh, md.cell_tags, p, (-0.3, 0.3), [])
        tr.seed(0.0, pts, dirs)
        f = run(tr, GrowthFields({}), 2.5)
        res.append((f, tr.trajectories(), tr.comm.allreduce(tr.n_migrated)))
    (fs, Ts, _), (fp, Tp, mig) = res
    assert np.array_equal(fs["x"], fp["x"]) and np.array_equal(fs["state"], fp["state"])
    if comm.size > 1:
        assert mig > 0
    r = np.hypot(fp["x"][:, 0], fp["x"][:, 1])
    assert np.all(r <= 1.0 + 1e-9) and np.all(r > 0.97)  # on the faceted surface
    assert np.all(fp["length"] > 2.4)  # ~2.5 mm in 2.5 days: no time lost at the wall
    assert np.all(fp["x"][:, 2] > fp["x0"][:, 2] + 0.5)
    if comm.rank == 0:
        assert np.array_equal(Ts["x"], Tp["x"])
        assert np.hypot(Tp["x"][:, 0], Tp["x"][:, 1]).max() <= 1.0 + 1e-9
