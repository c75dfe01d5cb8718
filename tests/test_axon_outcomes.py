"""Crossing outcomes with their uncertainty (scaffoldfem.axons.outcomes) and the
crossing-curve picture (scaffoldfem.viz.crossing).

Synthetic trajectories in the format of ``Tracer.trajectories()`` (straight lines,
zig-zags and random walks through the default 7-channel layout), plus one real
tracer run on a box to check the format and the crossing bookkeeping against the
tracer's own flags. Pure functions run identically on every rank; the tracer run
is collective and its outcomes are compared on the gathering rank.
"""

from __future__ import annotations

import numpy as np
import pytest

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.axons.outcomes import (
    Layout,
    Outcomes,
    median_interval,
    precision_warning,
    wilson_interval,
)
from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.regions import cell_tag

GEOM = GeometryConfig()
LAYOUT = Layout.from_geometry(GEOM, cross_depth=0.5)  # lesion z in [-1, 1], 7 channels
CENTRES = np.asarray(GEOM.channel_centres())
R = GEOM.channels.radius


def region_of(p: np.ndarray) -> np.ndarray:
    """Tags of the default transection: channels and matrix in |z| <= 1, scar rim."""
    x, y, z = p.T
    tag = np.full(len(p), cell_tag("white_matter"))
    tag[(np.abs(z) > 1.0) & (np.abs(z) <= 1.2)] = cell_tag("scar")
    les = np.abs(z) <= 1.0
    tag[les] = cell_tag("scaffold")
    for cx, cy in CENTRES:
        tag[les & ((x - cx) ** 2 + (y - cy) ** 2 <= R * R)] = cell_tag("channel")
    return tag


def build(paths, times, sense=None, t_seed=None, layout=LAYOUT, flags=True) -> dict:
    """A trajectories dict from per-axon point arrays and times; ``crossed`` and
    ``t_cross`` computed point by point the way the tracer does (first point at
    or beyond ``cross_depth`` past the far face)."""
    n = len(paths)
    sense = np.ones(n) if sense is None else np.asarray(sense, dtype=float)
    t_seed = np.array([t[0] for t in times]) if t_seed is None else np.asarray(t_seed)
    x = np.vstack(paths)
    t = np.concatenate(times)
    crossed = np.zeros(n, dtype=bool)
    t_cross = np.full(n, np.nan)
    for j, (p, tj) in enumerate(zip(paths, times, strict=True)):
        if sense[j] > 0:
            hit = p[:, 2] >= layout.z_caudal + layout.cross_depth
        else:
            hit = p[:, 2] <= layout.z_rostral - layout.cross_depth
        if hit.any():
            crossed[j], t_cross[j] = True, tj[np.argmax(hit)]
    out = {"x": x, "t": t, "region": region_of(x),
           "offsets": np.r_[0, np.cumsum([len(p) for p in paths])], "axons": np.arange(n),
           "axon_id": np.repeat(np.arange(n), [len(p) for p in paths])}
    if flags:
        out |= {"sense": sense, "t_seed": t_seed, "crossed": crossed, "t_cross": t_cross}
    return out


def line(p0, p1, speed=0.25, t0=0.0, ds=0.05):
    """Straight path from p0 to p1 at ``speed`` (mm/day), a point every ``ds`` mm."""
    p0, p1 = np.asarray(p0, float), np.asarray(p1, float)
    L = float(np.linalg.norm(p1 - p0))
    k = max(int(np.ceil(L / ds)), 1)
    s = np.linspace(0.0, 1.0, k + 1)
    return p0 + s[:, None] * (p1 - p0), t0 + s * L / speed


def random_walks(n, seed=0, sense=1.0):
    """Persistent random walks along ``sense``·z that stop at a random depth."""
    rng = np.random.default_rng(seed)
    paths, times = [], []
    for _ in range(n):
        ang, r = rng.uniform(0, 2 * np.pi), 0.8 * np.sqrt(rng.uniform())
        p = [np.array([r * np.cos(ang), 0.8 * r * np.sin(ang), -1.4 * sense])]
        stop = rng.uniform(-0.8, 3.0)
        d = np.array([0.0, 0.0, sense])
        while sense * p[-1][2] < stop and len(p) < 400:
            d = d + rng.normal(0, 0.25, 3)
            d[2] = sense * abs(d[2])
            d /= np.linalg.norm(d)
            p.append(p[-1] + 0.05 * d)
        p = np.array(p)
        paths.append(p)
        times.append(np.arange(len(p)) * 0.05 / 0.3 + rng.uniform(0, 0.5))
    return paths, times


# -- intervals -----------------------------------------------------------------------


@pytest.mark.parametrize("k, n, lo, hi", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634),
                                          (50, 100, 0.4038, 0.5962), (10, 10, 0.7225, 1.0),
                                          (1, 2000, 8.83e-5, 2.83e-3)])
def test_wilson_known_values(k, n, lo, hi):
    """Wilson 95 % intervals (Newcombe 1998 Stat Med 17:857, method 3) and scipy's."""
    from scipy.stats import binomtest

    a, b = wilson_interval(k, n)
    assert a == pytest.approx(lo, abs=5e-5, rel=2e-3) and b == pytest.approx(hi, abs=5e-5,
                                                                             rel=2e-3)
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert a == pytest.approx(ref.low, abs=1e-12) and b == pytest.approx(ref.high, abs=1e-12)


def test_wilson_vectorised_and_defining_equation():
    k, n = np.array([0, 3, 17, 40, 0]), np.array([40, 40, 40, 40, 0])
    lo, hi = wilson_interval(k, n)
    assert lo[-1] == 0.0 and hi[-1] == 1.0  # no axons: no information
    p = k[:-1] / n[:-1]
    for bound in (lo[:-1], hi[:-1]):  # |p̂ - p| = z sqrt(p (1 - p) / n) at both bounds
        ok = (bound > 0) & (bound < 1)
        res = (p - bound) ** 2 - 1.959963984540054**2 * bound * (1 - bound) / n[:-1]
        assert np.allclose(res[ok], 0.0, atol=1e-12)


def test_median_order_statistic_interval():
    v = np.random.default_rng(3).permutation(np.arange(1.0, 101.0))  # 1..100
    m = median_interval(v)
    assert m["median"] == 50.5 and (m["lo"], m["hi"]) == (40.0, 61.0)  # x_(40), x_(61)
    assert (m["q25"], m["q75"]) == pytest.approx((25.75, 75.25))
    assert median_interval(np.arange(5.0))["lo"] is None  # n = 5: no 95 % interval
    assert median_interval([])["median"] is None


def test_binomial_half_quantile_is_scipys_ppf():
    from scipy.stats import binom

    from scaffoldfem.axons.crossing import binomial_half_quantile

    for a in (0.025, 0.005, 0.05, 0.25):
        for n in [*range(0, 300), 499, 500, 1000, 2001]:
            assert binomial_half_quantile(a, n) == int(binom.ppf(a, n, 0.5)), (a, n)


def test_precision_warning():
    w = precision_warning(50, 100, "descending axons")
    assert w is not None and "\n" not in w and "100 axons" in w and "±9.6 points" in w
    assert precision_warning(60, 2000) is None  # p = 0.03: ±0.75 points
    assert precision_warning(0, 0) is not None
    paths, times = [], []
    for j in range(100):  # 50 straight axons cross, 50 stop in the scaffold
        p, t = line((0.0, 0.0, -1.4), (0.0, 0.0, 2.0 if j % 2 else 0.0))
        paths.append(p)
        times.append(t)
    oc = Outcomes(build(paths, times), LAYOUT)
    assert oc.crossing("descending")["crossing_fraction"] == 0.5
    assert len(oc.warnings()) == 1 and "descending" in oc.warnings()[0]
    assert oc.metrics()["warnings"] == oc.warnings()


# -- crossing curve ------------------------------------------------------------------


def test_crossing_curve_monotone_and_equal_to_crossing_fraction():
    pd_, td = random_walks(150, seed=1)
    pa, ta = random_walks(60, seed=2, sense=-1.0)
    traj = build(pd_ + pa, td + ta, sense=np.r_[np.ones(150), -np.ones(60)])
    oc = Outcomes(traj, LAYOUT)
    assert oc.populations() == ["descending", "ascending"]
    times = np.linspace(0.5, oc.final_time(), 9)  # every axon is seeded by t = 0.5
    tab = oc.crossing_table(times)
    assert list(tab.columns) == ["t_day", "population", "depth_mm", "seeded", "reached", "P",
                                 "lo", "hi"]
    assert 0.5 in set(tab["depth_mm"]) and tab["depth_mm"].max() == 2.0
    for (t, pop), g in tab.groupby(["t_day", "population"]):
        P = g.sort_values("depth_mm")["P"].to_numpy()
        assert np.all(np.diff(P) <= 0), (t, pop)  # deeper is never more likely
        assert np.all((g["lo"] <= g["P"]) & (g["P"] <= g["hi"]))
    ts = oc.timeseries(times)
    for pop, sel in (("descending", slice(0, 150)), ("ascending", slice(150, 210))):
        final = tab[(tab["t_day"] == times[-1]) & (tab["population"] == pop)]
        at = final[final["depth_mm"] == 0.5]["P"].item()
        frac = traj["crossed"][sel].mean()
        assert at == frac == oc.crossing(pop)["crossing_fraction"]
        assert 0.1 < frac < 0.9
        f = ts[f"crossing_fraction_{pop}"].to_numpy()
        assert f[-1] == frac and np.all(np.diff(f) >= 0) and f[0] == 0.0
        # before an axon of a population is seeded its fraction is undefined
        early = oc.curve(pop, 0.0)
        assert early["seeded"].iloc[0] == np.sum(traj["t_seed"][sel] <= 0.0)
        if early["seeded"].iloc[0] == 0:
            assert early["P"].isna().all() and early["lo"].isna().all()
        assert np.all(ts[f"crossing_lo_{pop}"] <= f) and np.all(f <= ts[f"crossing_hi_{pop}"])
        # at an earlier time: exactly the axons whose crossing point came by then
        t = times[4]
        k = np.sum(traj["t_cross"][sel] <= t)
        assert ts[f"crossing_fraction_{pop}"][4] == k / (sel.stop - sel.start)
    # the inferred flags (no per-axon arrays) agree with the tracer-style ones
    bare = build(pd_ + pa, td + ta, flags=False)
    ob = Outcomes(bare, LAYOUT)
    assert ob.crossing("ascending") == oc.crossing("ascending")
    assert ob.time_to_cross("descending") == oc.time_to_cross("descending")


def test_time_to_cross_from_seeding():
    """Straight axons at 0.25 mm/day seeded at different times: crossing takes
    (far face + cross_depth - z0)/v days from seeding whatever the seed time."""
    paths, times, seeds = [], [], []
    for j in range(40):
        t0 = 0.5 * j
        p, t = line((0.0, 0.0, -1.4), (0.0, 0.0, 2.5), t0=t0, ds=0.01)
        paths.append(p)
        times.append(t)
        seeds.append(t0)
    oc = Outcomes(build(paths, times, t_seed=seeds), LAYOUT)
    tt = oc.time_to_cross("descending")
    assert tt["n"] == 40 and tt["median"] == pytest.approx((1.5 + 1.4) / 0.25, abs=0.05)
    assert tt["lo"] <= tt["median"] <= tt["hi"]
    # before the last seeding only the axons seeded so far count
    ts = oc.timeseries([5.0])
    assert ts["crossing_fraction_descending"][0] == 0.0
    assert oc.curve("descending", 5.0)["seeded"].iloc[0] == 11


# -- channels --------------------------------------------------------------------


def test_axons_per_channel_at_mid_scaffold():
    """Straight axons through known channel centres (some tilted across the mid-plane),
    between channels (matrix), and some that never reach the mid-plane."""
    want = {0: 3, 3: 2, 5: 1}
    paths, times = [], []
    for c, k in want.items():
        cx, cy = CENTRES[c]
        for i in range(k):
            off = 0.1 * (i - 1)  # within the 0.225-mm radius
            # tilted: from (cx - 0.1, ...) to (cx + 0.1, ...) passes z = 0 at cx
            p, t = line((cx - 0.1 + off, cy, -1.4), (cx + 0.1 + off, cy, 1.4))
            paths.append(p)
            times.append(t)
    for xy in ((0.35, 0.0), (-0.35, 0.2)):  # walls between channels: matrix
        p, t = line((*xy, -1.4), (*xy, 1.6))
        paths.append(p)
        times.append(t)
    p, t = line((0.0, 0.0, -1.4), (0.0, 0.0, -0.3))  # stalls before the mid-plane
    paths.append(p)
    times.append(t)
    m = Outcomes(build(paths, times), LAYOUT).mid_scaffold("descending")
    per = np.zeros(7, dtype=int)
    for c, k in want.items():
        per[c] = k
    assert m["per_channel"] == per.tolist()
    assert (m["seeded"], m["reached"], m["channel"], m["matrix"], m["outside_scaffold"]) == (
        9, 8, 6, 2, 0)
    assert m["channel_fraction"] == 6 / 8 and m["matrix_fraction"] == 2 / 8
    lo, hi = m["channel_ci95"]
    assert lo < 0.75 < hi
    # A half-section scaffold (x >= 0): an axon at x < 0 passes outside the scaffold.
    section = type(GEOM.scaffold_section())(1.4, 1.1, side=1, cut=0.0)  # ScaffoldSection
    half = Layout(-1.0, 1.0, 0.5, ((0.7, 0.0),), R, section)
    p1, t1 = line((0.7, 0.0, -1.4), (0.7, 0.0, 1.4))
    p2, t2 = line((-0.6, 0.0, -1.4), (-0.6, 0.0, 1.4))
    p3, t3 = line((0.2, 0.5, -1.4), (0.2, 0.5, 1.4))
    h = Outcomes(build([p1, p2, p3], [t1, t2, t3], layout=half), half).mid_scaffold("descending")
    assert (h["channel"], h["matrix"], h["outside_scaffold"]) == (1, 1, 1)


def test_channel_alignment_and_tortuosity():
    """Straight z-lines in channels: alignment 1, tortuosity 1. A zig-zag of lateral
    amplitude a per step b: |cos| = b/sqrt(b² + 4a²) and tortuosity its inverse."""
    paths, times = [], []
    for cx, cy in CENTRES[:4]:
        p, t = line((cx, cy, -1.4), (cx, cy, 1.6))
        paths.append(p)
        times.append(t)
    oc = Outcomes(build(paths, times), LAYOUT)
    s = oc.in_channels("descending")
    assert s["alignment_cos"] == pytest.approx(1.0, abs=1e-12)
    assert s["tortuosity"] == pytest.approx(1.0, abs=1e-12)
    assert s["runs"] == 4 and s["length_mm"] == pytest.approx(4 * 2.0, abs=4 * 0.1)
    a, b = 0.05, 0.04
    z = -0.9 + b * np.arange(43)  # 42 segments inside the lesion: ends at the start's x
    x = np.where(np.arange(len(z)) % 2 == 0, -a, a)
    zz = np.column_stack([x, np.zeros_like(z), z])
    s2 = Outcomes(build([zz], [np.arange(len(z)) * 0.2]), LAYOUT).in_channels("descending")
    cos = b / np.hypot(b, 2 * a)
    assert s2["alignment_cos"] == pytest.approx(cos, rel=1e-9)
    assert s2["tortuosity"] == pytest.approx(1 / cos, rel=1e-9)
    assert Outcomes(build([zz], [np.arange(len(z)) * 0.2]), LAYOUT).metrics()[
        "populations"]["descending"]["in_channels"]["runs"] == 1


def test_metrics_json_ready():
    import json

    pd_, td = random_walks(40, seed=5)
    m = Outcomes(build(pd_, td), LAYOUT).metrics()
    text = json.dumps(m, allow_nan=False)  # no NaN / numpy scalars
    back = json.loads(text)["populations"]["descending"]
    assert set(back) >= {"seeded", "crossed", "crossing_fraction", "crossing_ci95",
                         "median_time_to_cross_day", "time_to_cross_ci95_day",
                         "time_to_cross_iqr_day", "crossing_curve", "mid_scaffold",
                         "in_channels"}
    assert len(back["crossing_curve"]["P"]) == len(back["crossing_curve"]["depth_mm"])


# -- the real tracer ------------------------------------------------------------------


def _box_run(comm, days=8.0):
    """A box [-1,1]² x [-2,2] mm with cord-like tags (white/grey matter, a scaffold
    with one channel in |z| < 0.3; no scar, so cones cross), a caudal neurotrophin
    gradient and a two-level modulus; 60 descending and 20 ascending cones of the
    default seeding, the study's default model otherwise (only keys every model
    version has, plus: start at t = 0 and a cue smoothing this 0.2-mm mesh resolves)."""
    from dolfinx import fem
    from dolfinx import mesh as dmesh

    from scaffoldfem.axons.tracer import GrowthFields, Tracer
    from scaffoldfem.config.axons import AxonsConfig

    msh = dmesh.create_box(comm, [[-1, -1, -2], [1, 1, 2]], [10, 10, 20],
                           dmesh.CellType.tetrahedron, ghost_mode=dmesh.GhostMode.shared_facet)
    tdim = msh.topology.dim
    n = msh.topology.index_map(tdim).size_local + msh.topology.index_map(tdim).num_ghosts
    x = msh.geometry.x[np.asarray(msh.geometry.dofmaps[0])[:n]].mean(axis=1)
    r, z = np.hypot(x[:, 0], x[:, 1]), x[:, 2]
    tag = np.where(r < 0.45, cell_tag("grey_matter"), cell_tag("white_matter"))
    tag = np.where(np.abs(z) < 0.3, np.where(r < 0.3, cell_tag("channel"),
                                             cell_tag("scaffold")), tag)
    tags = dmesh.meshtags(msh, tdim, np.arange(n, dtype=np.int32), tag.astype(np.int32))
    V = fem.functionspace(msh, ("Lagrange", 1))
    c = fem.Function(V)
    c.interpolate(lambda p: 27.0 * np.exp(0.8 * p[2]) + 3.0 * p[0])
    Q = fem.functionspace(msh, ("DG", 0))
    E = fem.Function(Q)
    E.interpolate(lambda p: np.where(p[0] < 0.0, 1.0, 0.2) + 0.1 * p[2] ** 2)
    kw = dict(count=60, sensory=True, sensory_count=20, seed=11, seed_offset="0.35 mm",
              cross_depth="0.4 mm")
    known = AxonsConfig.model_fields
    kw |= {k: v for k, v in (("dieback_delay", "0 day"), ("seeding_window", "0 day"),
                             ("cue_smoothing", "0.5 mm")) if k in known}
    tr = Tracer(msh, tags, AxonsConfig(**kw), (-0.3, 0.3), ["NT3"])
    tr.seed(0.0)
    fields = GrowthFields({"NT3": c}, stiffness=E)
    for k in range(int(days)):
        tr.advance(float(k), float(k + 1), fields)
    return tr


def test_outcomes_of_a_tracer_run(comm):
    """The gathered trajectories of a real run carry population, seed and crossing
    times, and the crossing curve at cross_depth equals the tracer's crossing
    fraction per population at the final time."""
    tr = _box_run(comm)
    f = tr.final()
    layout = Layout(-0.3, 0.3, 0.4, ((0.0, 0.0),), 0.3)
    oc = tr.outcomes(layout)
    T = tr.trajectories()
    if comm.rank != 0:
        assert oc is None and T is None
        return
    assert set(T["population"]) == {"descending", "ascending"}
    assert np.array_equal(T["axons"], f["id"]) and np.array_equal(T["sense"], f["sense"])
    assert np.array_equal(T["t_cross"][T["crossed"]], f["t_cross"][f["crossed"]])
    assert np.all(np.isnan(T["t_cross"][~T["crossed"]]))
    res = oc.metrics()
    for pop, s in (("descending", 1.0), ("ascending", -1.0)):
        sel = f["sense"] == s
        c = oc.crossing(pop)
        assert c["seeded"] == sel.sum() and c["crossed"] == f["crossed"][sel].sum()
        curve = oc.curve(pop, oc.final_time())
        assert curve[curve["depth_mm"] == 0.4]["P"].item() == c["crossing_fraction"]
        ttc = (f["t_cross"] - f["t_seed"])[sel & f["crossed"]]
        got = res["populations"][pop]["median_time_to_cross_day"]
        assert got == (float(np.median(ttc)) if ttc.size else None)
    assert res["populations"]["descending"]["crossed"] > 0
    assert res["populations"]["descending"]["mid_scaffold"]["reached"] > 0


# -- picture ------------------------------------------------------------------------


def test_crossing_picture(tmp_path_factory, comm):
    from PIL import Image

    from scaffoldfem.viz.crossing import plot_crossing

    pd_, td = random_walks(120, seed=7)
    pa, ta = random_walks(40, seed=8, sense=-1.0)
    oc = Outcomes(build(pd_ + pa, td + ta, sense=np.r_[np.ones(120), -np.ones(40)]), LAYOUT)
    tab = oc.crossing_table(np.linspace(0.0, oc.final_time(), 6))
    ok = None
    if comm.rank == 0:
        png = plot_crossing(tab, tmp_path_factory.mktemp("crossing") / "crossing.png",
                            cross_depth=0.5, dpi=80)
        img = np.asarray(Image.open(png).convert("RGB"), dtype=float)
        blue = np.all(np.abs(img - (0, 114, 178)) < 30, axis=2).sum()  # descending curve
        orange = np.all(np.abs(img - (213, 94, 0)) < 30, axis=2).sum()  # ascending
        ok = img.std() > 20 and blue > 100 and orange > 100 and img.shape[1] > img.shape[0]
    assert comm.bcast(ok)
