"""Growth-cone tracing (scaffoldfem.axons.tracer) in prescribed fields on box meshes.

Box [-1,1]^2 x [-2,2] mm, cord axis z. Every test runs serially and under
``mpiexec -n 2``; trajectories are compared on all ranks through collective
outputs, so every rank takes the same decisions.
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
from scaffoldfem.fem.locate import Locator
from scaffoldfem.regions import cell_tag
from scaffoldfem.axons.tracer import EXITED, GROWING, STALLED, GrowthFields, Tracer

OFF = dict(persistence=0.0, chemotaxis=0.0, durotaxis=0.0, noise=0.0, scar_repulsion=0.0,
           guidance={})


def setup(comm, region=lambda m: np.full(len(m), cell_tag("white_matter")), n=(8, 8, 16),
          ghost=dmesh.GhostMode.shared_facet):
    """Box mesh, its locator and region tags from a function of the cell midpoints."""
    msh = dmesh.create_box(comm, [[-1, -1, -2], [1, 1, 2]], list(n), dmesh.CellType.tetrahedron,
                           ghost_mode=ghost)
    loc = Locator(msh)
    tag = np.asarray(region(loc.midpoints()), dtype=np.int32)
    tags = dmesh.meshtags(msh, 3, np.arange(loc.num_cells, dtype=np.int32), tag)
    return msh, loc, tags


def cfg(weights=None, **kw) -> AxonsConfig:
    """Config with every cue off except those given."""
    return AxonsConfig(weights={**OFF, **(weights or {})}, **kw)


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


def test_rng_counter_based():
    ids = np.arange(1000)
    u = am.uniforms(7, ids, 3, 4)
    assert np.array_equal(u[500:], am.uniforms(7, ids[500:], 3, 4))  # batch independent
    assert not np.array_equal(u, am.uniforms(7, ids, 4, 4))
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.02
    g = am.normals(7, np.arange(20000), 0, 3)
    assert abs(g.mean()) < 0.02 and abs(g.std() - 1) < 0.02


def test_guidance_sign_follows_heading_or_polarity():
    a = np.tile([0.0, 0.0, 1.0], (3, 1))
    d = np.array([[0.1, 0.0, -0.99], [1.0, 0.0, 0.0], [1.0, 0.0, 0.05]])
    pref = np.tile([0.0, 0.0, 1.0], (3, 1))
    g = am.aligned_axis(a, d, pref)
    assert np.array_equal(g[:, 2], [-1.0, 1.0, 1.0])
    assert np.array_equal(am.aligned_axis(a, d, -pref)[:, 2], [-1.0, -1.0, -1.0])


def test_occupancy_gradient_law():
    c = np.array([1.0, 27.0, 2700.0])
    gp = am.occupancy_gradient(c, np.tile([1.0, 0, 0], (3, 1)), 27.0)
    assert np.allclose(gp[:, 0], 27.0 / (c + 27.0) ** 2)
    # finite difference of p = c/(c+K)
    h = 1e-6
    fd = (am.occupancy(c + h, 27.0) - am.occupancy(c - h, 27.0)) / (2 * h)
    assert np.allclose(gp[:, 0], fd, rtol=1e-6)


def test_chemotaxis_straight_up_gradient(comm):
    """Chemotaxis only, no noise: every axon goes straight along ∇c from the first step."""
    msh, loc, tags = setup(comm)
    g = np.array([1.0, -0.5, 2.0]) / np.linalg.norm([1.0, -0.5, 2.0])
    c = p1(msh, lambda x: 27.0 + 5.0 * (g[0] * x[0] + g[1] * x[1] + g[2] * x[2]))
    p = cfg({"chemotaxis": 1.0}, detection_threshold=1e-4, step_length="0.02 mm")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF"], locator=loc)
    rng = np.random.default_rng(1)
    tr.seed(0.0, seeds(30, rng), directions=rng.normal(size=(30, 3)))
    f = run(tr, GrowthFields({"BDNF": c}), 1.0)
    disp = f["x"] - f["x0"]
    assert np.all(f["length"] > 0.2)
    assert np.allclose(disp / np.linalg.norm(disp, axis=1)[:, None], g, atol=1e-9)
    assert np.allclose(f["tortuosity"], 1.0, atol=1e-9)
    T = tr.trajectories()
    if comm.rank == 0:
        rel = T["x"] - np.repeat(f["x0"], np.diff(T["offsets"]), axis=0)
        assert np.abs(np.cross(rel, g)).max() < 1e-9  # every recorded point on the line
        assert len(T["axons"]) == 30 and np.all(np.diff(T["t"])[np.diff(T["axon_id"]) == 0] > 0)


@pytest.mark.parametrize("threshold", [1e-4, 0.0])
def test_chemotaxis_vanishes_at_saturation(comm, threshold):
    """Same gradient: strong turning near K_d, none far above K_d (occupancy saturates)."""
    msh, loc, tags = setup(comm)
    lateral = {}
    for c0 in (27.0, 27.0e3):
        c = p1(msh, lambda x, c0=c0: c0 + 5.0 * x[0])
        p = cfg({"chemotaxis": 1.0, "persistence": 1.0}, detection_threshold=threshold)
        tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF"], locator=loc)
        tr.seed(0.0, seeds(20, np.random.default_rng(2)))
        f = run(tr, GrowthFields({"BDNF": c}), 1.0)
        lateral[c0] = np.mean((f["x"][:, 0] - f["x0"][:, 0]) / f["length"])
    assert lateral[27.0] > 0.2
    if threshold > 0:
        assert lateral[27.0e3] == 0.0
    else:
        assert 0 <= lateral[27.0e3] < 1e-5


def _lateral_stats(comm, threshold, n=300):
    msh, loc, tags = setup(comm)
    # Δp across 10 µm at c = K_d is 5e-4: half the default threshold (1e-3).
    c = p1(msh, lambda x: 27.0 + 5.4 * x[0])
    p = cfg({"chemotaxis": 4.0, "persistence": 1.0, "noise": 1.0},
            detection_threshold=threshold, seed=5)
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF"], locator=loc)
    tr.seed(0.0, seeds(n, np.random.default_rng(3), lo=(-0.2, -0.2, -1.5), hi=(0.2, 0.2, -1.0)))
    f = run(tr, GrowthFields({"BDNF": c}), 2.0)
    dx = f["x"][:, 0] - f["x0"][:, 0]
    return dx.mean(), dx.std(ddof=1) / np.sqrt(n)


def test_below_detection_threshold_unbiased(comm):
    """Below threshold the mean lateral drift is zero within 3 SE; above it, it is not."""
    m0, se0 = _lateral_stats(comm, 1e-3)
    assert abs(m0) < 3 * se0
    m1, se1 = _lateral_stats(comm, 1e-4)
    assert m1 > 3 * se1


def channel_region(m, r=0.3):
    inside = m[:, 0] ** 2 + m[:, 1] ** 2 < r * r
    return np.where(inside, cell_tag("channel"), cell_tag("scaffold"))


@pytest.mark.parametrize("guided", [True, False])
def test_channel_contact_guidance(comm, guided):
    """Contact guidance only (with noise): cones stay in the channel and follow its axis."""
    msh, loc, tags = setup(comm, channel_region, n=(16, 16, 16))
    w = {"persistence": 1.0, "noise": 0.3, "guidance": {"channel": 2.0 if guided else 0.0}}
    p = cfg(w, step_length="0.02 mm", seed=9)
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
        assert rmax < 0.25  # channel radius 0.3 (cells straddle it)
        assert np.mean(f["alignment"]) > 0.97
        assert np.all(f["length"] > 1.5)
    else:
        assert rmax > 0.5  # without guidance the 30° headings leave the channel
        assert np.mean(f["alignment"]) < 0.92


def scar_region(m):
    return np.where((m[:, 2] > 0.3) & (m[:, 2] < 0.6), cell_tag("scar"),
                    cell_tag("white_matter"))


def _crossing(comm, speed_factor, repulsion, slope, n=120):
    msh, loc, tags = setup(comm, scar_region, n=(8, 8, 32))
    c = p1(msh, lambda x: 27.0 * np.exp(slope * x[2]))
    w = {"persistence": 1.0, "noise": 0.6, "chemotaxis": 1.0, "scar_repulsion": repulsion}
    p = cfg(w, scar_speed_factor=speed_factor, step_length="0.02 mm", cross_depth="0.3 mm",
            stall_time="1 day", stall_distance="0.05 mm", seed=2, detection_threshold=1e-4)
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["NT-3"], locator=loc)
    tr.seed(0.0, seeds(n, np.random.default_rng(6), lo=(-0.6, -0.6, -0.6), hi=(0.6, 0.6, -0.5)))
    run(tr, GrowthFields({"NT-3": c}), 8.0, dt=1.0)
    return tr.metrics()


def test_scar_inhibition_and_ntf_gradient_monotone(comm):
    """Crossing falls as scar inhibition (slowing + repulsion) rises, and rises with a
    steeper caudal NTF gradient (c = K_d exp(s z)); three levels each."""
    inhib = [_crossing(comm, sf, rep, 0.5)["crossing_fraction"]
             for sf, rep in ((1.0, 0.0), (0.6, 0.05), (0.4, 0.15))]
    assert inhib[0] > inhib[1] + 0.15 and inhib[1] > inhib[2] + 0.15, inhib
    ntf = [_crossing(comm, 0.5, 0.1, s)["crossing_fraction"] for s in (0.0, 0.6, 1.2)]
    assert ntf[0] + 0.15 < ntf[1] and ntf[1] + 0.15 < ntf[2], ntf


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
              ghost=dmesh.GhostMode.shared_facet):
    """A run with every cue on; optionally checkpointed after ``split`` days and
    restored (on ``restart_comm``, default the same) for the rest."""
    msh, loc, tags = setup(comm, cord_region, n=(10, 10, 20), ghost=ghost)
    c1 = p1(msh, lambda x: 27.0 * np.exp(0.8 * x[2]) + 3.0 * x[0])
    c2 = p1(msh, lambda x: 60.0 / (1.0 + x[0] ** 2 + x[1] ** 2 + x[2] ** 2))
    E = dg0(msh, lambda x: np.where(x[0] < 0.0, 1.0, 0.2) + 0.1 * x[2] ** 2)
    p = AxonsConfig(count=60, sensory=True, sensory_count=20, seed=11, seed_offset="0.35 mm",
                    step_length="0.02 mm", cross_depth="0.4 mm", stall_time="2 day",
                    scar_speed_factor=0.5, weights={"noise": 0.5, "durotaxis": 0.5,
                                                    "scar_repulsion": 0.1})
    fields = GrowthFields({"BDNF": c1, "NT-3": c2}, stiffness=E)
    tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF", "NT-3"], locator=loc)
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
            return _full_run(restart_comm, days, state=(split, state))
        tr = Tracer(msh, tags, p, (-0.3, 0.3), ["BDNF", "NT-3"], locator=loc)
        tr.set_state(state)
        run(tr, fields, days - split, t0=split)
    return tr


@pytest.mark.parametrize("ghost", [dmesh.GhostMode.shared_facet, dmesh.GhostMode.none])
def test_same_seed_same_trajectories_1_and_n_ranks(comm, ghost):
    """Every recorded point, state and metric bit-identical on COMM_SELF and COMM_WORLD
    (distributed mesh with and without a ghost layer)."""
    serial = _full_run(MPI.COMM_SELF)
    par = _full_run(comm, ghost=ghost)
    Ts, Tp = serial.trajectories(), par.trajectories()
    ms, mp = serial.metrics(), par.metrics()
    assert ms == mp
    if comm.size > 1:
        assert comm.allreduce(par.n_migrated) > 0  # cones did change rank
    if comm.rank == 0:
        for k in ("axon_id", "step", "t", "x", "speed", "region", "state", "offsets"):
            assert np.array_equal(Ts[k], Tp[k]), k
        for s in ("BDNF", "NT-3"):
            assert np.array_equal(Ts["concentration"][s], Tp["concentration"][s],
                                  equal_nan=True)
        assert np.array_equal(Ts["final_state"], Tp["final_state"])
        assert Tp["crossed"].sum() == mp["crossed"]
        # the run exercises the model: cones cross, and visit scar and channel
        assert ms["crossed"] > 0 and ms["seeded"] == 80
        assert {cell_tag("scar"), cell_tag("channel")} <= set(Tp["region"].tolist())
        assert cell_tag("cavity") not in set(Tp["region"].tolist())


@pytest.mark.parametrize("where", ["same", "serial"])
def test_checkpoint_restart_is_exact(comm, where):
    """get_state/set_state mid-run changes nothing, restored on the same communicator
    or (N -> 1 ranks) on COMM_SELF."""
    a = _full_run(comm, days=4.0)
    b = _full_run(comm, days=4.0, split=2.0,
                  restart_comm=MPI.COMM_SELF if where == "serial" else None)
    Ta, Tb = a.trajectories(), b.trajectories()
    assert a.metrics() == b.metrics()
    if comm.rank == 0:
        for k in ("axon_id", "step", "t", "x", "state"):
            assert np.array_equal(Ta[k], Tb[k]), k


def test_default_seeding_regions_and_sensory(comm):
    msh, loc, tags = setup(comm, cord_region, n=(10, 10, 20))
    p = AxonsConfig(count=50, sensory=True, seed=4, seed_offset="0.35 mm")
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
    # reproducible from the seed
    tr2 = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
    tr2.seed(0.0)
    assert np.array_equal(tr2.final()["x0"], f["x0"])


def test_durotaxis_to_softer_side(comm):
    """Two-stiffness block (1 kPa at x<0, 0.1 kPa at x>0): cones end on the soft side."""
    msh, loc, tags = setup(comm, n=(16, 8, 16))
    E = dg0(msh, lambda x: np.where(x[0] < 0.0, 1.0, 0.1))
    rng = np.random.default_rng(8)
    soft = {}
    for w in (0.0, 1.0):
        p = cfg({"persistence": 1.0, "noise": 0.3, "durotaxis": w}, seed=3)
        tr = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
        tr.seed(0.0, seeds(80, rng, lo=(-0.12, -0.5, -1.5), hi=(0.12, 0.5, -1.2)))
        f = run(tr, GrowthFields({}, stiffness=E), 3.0)
        soft[w] = np.mean(f["x"][:, 0] > 0.0)
    assert soft[1.0] > 0.9
    assert soft[0.0] < 0.75


def test_pia_slide_exit_and_stall(comm):
    """Cones aimed through the lateral surface slide along it and exit at the caudal end;
    cones in a strongly inhibiting scar stall after stall_time."""
    msh, loc, tags = setup(comm, lambda m: np.where(m[:, 2] > 0.5, cell_tag("scar"),
                                                    cell_tag("white_matter")))
    p = cfg({"persistence": 1.0}, step_length="0.05 mm", speed="1 mm/day",
            max_speed="1 mm/day", scar_speed_factor=0.01, stall_time="1 day")
    tr = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
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
    # group B: descending cones that run into the scar (slowed to 0.01 mm/day) and stall
    tr2 = Tracer(msh, tags, p, (-0.3, 0.3), [], locator=loc)
    tr2.seed(0.0, np.column_stack([np.zeros(n), ys, np.full(n, 0.2)]))
    f2 = run(tr2, GrowthFields({}), 3.0)
    assert np.all(f2["state"] == STALLED)
    assert np.all(f2["x"][:, 2] < 0.6) and np.all(f2["t"] < 2.0)
    # group C: the caudal end ends cones as "exited" at z_max (not lesion-crossing cones)
    tr3 = Tracer(msh, tags, cfg({"persistence": 1.0}, step_length="0.05 mm", speed="1 mm/day",
                                max_speed="1 mm/day", cross_depth="0.2 mm",
                                scar_speed_factor=1.0),
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
    p = cfg({"persistence": 1.0}, step_length="0.02 mm", speed="0.5 mm/day",
            max_speed="1 mm/day")
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
    # those slid along the face (z fixed) round the edge x = 0.25 and went on
    assert np.all(f["x"][aimed, 0] > 0.25) and np.allclose(f["x"][aimed, 2], -0.25)
    assert np.all(f["length"] > 1.4)  # nobody was held up: 3 days at 0.5 mm/day, minus pia


def test_metrics_straight_growth_analytic(comm):
    """No cues but persistence: speed = v0, so crossing time and length are analytic."""
    msh, loc, tags = setup(comm)
    p = cfg({"persistence": 1.0}, step_length="0.01 mm", cross_depth="0.5 mm")
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
    p = cfg({"persistence": 1.0}, step_length="0.02 mm", speed="1 mm/day", max_speed="1 mm/day")
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
