"""The pictures of a run directory, drawn from a small synthetic run.

The run directory is built here with numpy/PyVista (no solver): an elliptic cord
of tetrahedra with the region tags, analytic fields peaked in the lesion, a few
axons of every final state, and the tables. Each picture is drawn at small size
on rank 0 and checked for content (pixel spread, the expected colours), and the
result is broadcast so every rank asserts the same thing.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import scaffoldfem  # noqa: F401  (MPI before dolfinx)
from scaffoldfem.config.study import validate_study
from scaffoldfem.regions import CELL_TAGS

SPECIES = ("BDNF", "NT3", "GDNF")
LESION = (-1.0, 1.0)  # default study: 2-mm lesion centred at z = 0
SCAR = 0.2
L = 10.0
#: Channel centres (the default hexagonal layout of 7 channels at 0.7 mm pitch).
CHANNELS = [(0.0, 0.0)] + [(0.7 * np.cos(a), 0.7 * np.sin(a)) for a in np.arange(6) * np.pi / 3]


# -- synthetic run --------------------------------------------------------------------


def cord_grid(h: float = 0.2, ax: float = 1.4, ay: float = 1.1, length: float = L):
    """Tetrahedra of an elliptic cord (voxels inside the ellipse, split into tets)."""
    import pyvista as pv

    nx, ny, nz = (round(2 * ax / h) + 1, round(2 * ay / h) + 1, round(length / h) + 1)
    box = pv.ImageData(dimensions=(nx, ny, nz), spacing=(2 * ax / (nx - 1), 2 * ay / (ny - 1),
                                                         length / (nz - 1)),
                       origin=(-ax, -ay, -length / 2))
    c = box.cell_centers().points
    inside = (c[:, 0] / ax) ** 2 + (c[:, 1] / ay) ** 2 <= 1.0
    grid = box.extract_cells(np.flatnonzero(inside)).triangulate()
    cc = grid.cell_centers().points
    grid.cell_data["region"] = region_of(cc)
    return grid


def region_of(p: np.ndarray) -> np.ndarray:
    """Region tags at points ``p``: transection lesion with 7 channels, scar, grey matter."""
    x, y, z = p.T
    tag = np.full(len(p), CELL_TAGS["white_matter"], dtype=np.int32)
    tag[(x / 0.7) ** 2 + (y / 0.5) ** 2 <= 1] = CELL_TAGS["grey_matter"]
    tag[(np.abs(z) > LESION[1]) & (np.abs(z) <= LESION[1] + SCAR)] = CELL_TAGS["scar"]
    les = np.abs(z) <= LESION[1]
    tag[les] = CELL_TAGS["scaffold"]
    for cx, cy in CHANNELS:
        tag[les & ((x - cx) ** 2 + (y - cy) ** 2 <= 0.23 ** 2)] = CELL_TAGS["channel"]
    return tag


def concentration(p: np.ndarray, k: int, amp: float = 1.0) -> np.ndarray:
    """Analytic growth factor ``k``: a plateau in the lesion decaying outside."""
    out = np.maximum(np.abs(p[:, 2]) - LESION[1], 0.0)
    peak = (60.0, 6.0, 2.0)[k]
    return amp * peak * np.exp(-out / (0.5 - 0.1 * k)) * (1 - 0.2 * (p[:, 1] / 1.1) ** 2)


def fill_fields(ds, amp: float = 1.0) -> None:
    """Point and cell arrays of the file contract on ``ds`` (a grid or a slice)."""
    p = np.asarray(ds.points)
    for k, s in enumerate(SPECIES):
        ds.point_data[s] = concentration(p, k, amp)
    ds.point_data["MMP"] = 30 * np.exp(-(((np.abs(p[:, 2]) - 1.1) / 0.2) ** 2))
    region = np.asarray(ds.cell_data["region"])
    implant = np.isin(region, [CELL_TAGS["scaffold"], CELL_TAGS["channel"]])
    n = len(region)
    ds.cell_data["porosity"] = np.where(implant, 0.85, 0.2)
    ds.cell_data["modulus"] = np.where(implant, 12.0, 0.1)
    ds.cell_data["polymer_fraction"] = np.where(implant, 0.4, 0.0)
    ds.cell_data["von_mises"] = np.linspace(0.0, 1.0, n)
    ds.cell_data["volumetric_strain"] = np.full(n, 0.01)


def synthetic_axons(n: int = 40, t_end: float = 56.0, seed: int = 0):
    """Descending axons from the rostral face: crossed, stalled, growing and exited.

    A persistent random walk towards +z that is drawn into the nearest channel inside
    the lesion; each fate ends where such an axon would (beyond the caudal face, in
    the scar or scaffold, mid-lesion at the end of the run, outside the pia).
    """
    import pyvista as pv

    rng = np.random.default_rng(seed)
    z0 = LESION[0] - SCAR - 0.2
    fates = np.array([1, 1, 1, 1, 2, 2, 0, 3] * (n // 8 + 1))[:n]
    centres = np.array(CHANNELS)
    pts, lines, tt, cdata, start = [], [], [], [], 0
    for j, fate in enumerate(fates):
        ang = rng.uniform(0, 2 * np.pi)
        r = rng.uniform(0.75, 0.92)
        xy = np.array([1.4 * r * np.cos(ang), 1.1 * r * np.sin(ang)])
        zend = {1: 2.4, 2: rng.uniform(-1.15, 0.5), 0: rng.uniform(0.0, 0.9), 3: 9.0}[fate]
        v = np.zeros(2)
        path = [np.r_[xy, z0]]
        z = z0
        while z < zend and len(path) < 200:
            z += 0.05
            v = 0.8 * v + rng.normal(0, 0.006, 2)
            if abs(z) <= LESION[1] + SCAR:  # drawn into the nearest channel
                c = centres[np.argmin(np.linalg.norm(centres - xy, axis=1))]
                v += 0.08 * (c - xy)
            if fate == 3 and z > LESION[0]:  # drifts out through the pia
                v += 0.01 * xy / np.linalg.norm(xy)
            xy = xy + v
            path.append(np.r_[xy, z])
            if fate == 3 and (xy[0] / 1.4) ** 2 + (xy[1] / 1.1) ** 2 > 1.0:
                break
        path = np.array(path)
        t0 = rng.uniform(0, 0.1) * t_end
        t1 = t_end * {1: rng.uniform(0.55, 1.0), 2: rng.uniform(0.25, 0.7), 0: 1.0,
                      3: rng.uniform(0.35, 0.8)}[fate]
        pts.append(path)
        lines.append(np.r_[len(path), start + np.arange(len(path))])
        start += len(path)
        tt.append(np.linspace(t0, t1, len(path)))
        cdata.append((j, fate))
    P = np.vstack(pts)
    poly = pv.PolyData(P, lines=np.concatenate(lines))
    poly.point_data["t_day"] = np.concatenate(tt)
    poly.point_data["speed_mm_per_day"] = np.full(len(P), 0.24)
    poly.point_data["region"] = region_of(P)
    for k, s in enumerate(SPECIES):
        poly.point_data[f"c_{s}"] = concentration(P, k)
    c = np.array(cdata)
    poly.cell_data["axon_id"] = c[:, 0]
    poly.cell_data["final_state"] = c[:, 1]
    poly.cell_data["crossed"] = (c[:, 1] == 1).astype(np.int64)
    return poly


def write_run(run_dir: Path, grid=None, *, n_axons: int = 40, times=None) -> Path:
    """A complete synthetic run directory following the file contract."""
    import pandas as pd

    grid = cord_grid() if grid is None else grid
    times = np.arange(0.0, 57.0, 14.0) if times is None else np.asarray(times)
    (run_dir / "fields" / "sagittal").mkdir(parents=True, exist_ok=True)
    final = grid.copy()
    fill_fields(final)
    final.field_data["t_day"] = np.array([times[-1]])
    final.save(run_dir / "fields" / "final.vtu")
    sag = grid.slice(normal="x", origin=(0, 0, 0))
    amp = (times / 10) * np.exp(1 - times / 10) + 0.05  # rises, peaks at day 10, decays
    for i, (t, a) in enumerate(zip(times, amp, strict=True)):
        s = sag.copy()
        fill_fields(s, a / amp[-1])
        s.field_data["t_day"] = np.array([t])
        s.save(run_dir / "fields" / "sagittal" / f"t_{i:04d}.vtp")
    if n_axons:
        synthetic_axons(n_axons, t_end=float(times[-1])).save(run_dir / "axons.vtp")
    rows = {"t_day": times}
    for k, s in enumerate(SPECIES):
        rows[f"lesion_mean_{s}_ng_per_mL"] = (60.0, 6.0, 2.0)[k] * amp / amp[-1] * 0.5
        for term in ("mass", "released", "secreted", "dosed", "decayed", "uptake", "efflux",
                     "bound"):
            rows[f"{term}_{s}_ng"] = np.linspace(0, 1, len(times))
    rows["scaffold_mass_fraction"] = np.exp(-times / 40)
    rows["porosity_mean"] = 0.8 + 0.1 * (1 - np.exp(-times / 40))
    rows["modulus_mean_kPa"] = 15 * np.exp(-times / 20)
    crossed = np.round(n_axons / 2 / (1 + np.exp(-(times - 30) / 5)))
    rows["axons_crossed"] = crossed.astype(int)
    pd.DataFrame(rows).to_csv(run_dir / "timeseries.csv", index=False)
    metrics = {"species": {s: {"window_ng_per_mL": [1.0, 100.0],
                               "lesion_auc_ng_day_per_mL": float(np.trapezoid(
                                   rows[f"lesion_mean_{s}_ng_per_mL"], times))}
                           for s in SPECIES},
               "axons": {"seeded": n_axons, "crossed": int(crossed[-1])}}
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "study.resolved.toml").write_text(validate_study({"name": "pictures"}).to_toml())
    return run_dir


# -- checks ---------------------------------------------------------------------------


def _rgb(hexcolour: str) -> np.ndarray:
    h = hexcolour.lstrip("#")
    return np.array([int(h[i:i + 2], 16) for i in (0, 2, 4)], dtype=float)


def colour_share(img: np.ndarray, hexcolour: str, tol: float = 40.0) -> float:
    """Fraction of pixels within ``tol`` (RGB distance) of ``hexcolour``."""
    rgb = np.asarray(img)[..., :3].astype(float)
    return float(np.mean(np.linalg.norm(rgb - _rgb(hexcolour), axis=-1) < tol))


def hue_share(img: np.ndarray, channel: int, margin: float = 50.0) -> float:
    """Fraction of pixels whose ``channel`` (0 R, 1 G, 2 B) beats both others by ``margin``."""
    rgb = np.asarray(img)[..., :3].astype(float)
    others = np.delete(rgb, channel, axis=-1)
    return float(np.mean(rgb[..., channel] - others.max(axis=-1) > margin))


def cmap_share(img: np.ndarray, cmap: str, lo: float = 0.2, hi: float = 1.0,
               tol: float = 18.0) -> float:
    """Fraction of pixels within ``tol`` of the colormap's colours between ``lo`` and ``hi``
    (the near-white start is left out: it could be background)."""
    from matplotlib import colormaps

    ramp = 255 * np.asarray(colormaps[cmap](np.linspace(lo, hi, 64)))[:, :3]
    rgb = np.asarray(img)[..., :3].reshape(-1, 3).astype(float)[::7]  # a sample is enough
    d = np.min(np.linalg.norm(rgb[:, None, :] - ramp[None], axis=-1), axis=1)
    return float(np.mean(d < tol))


def on_root(comm, fn):
    """Run ``fn`` on rank 0 only; every rank returns its result or raises its error."""
    res, err = None, None
    if comm.rank == 0:
        try:
            res = fn()
        except Exception as e:
            import traceback

            err = f"{type(e).__name__}: {e}\n{traceback.format_exc()}"
    res, err = comm.bcast((res, err), root=0)
    if err is not None:
        pytest.fail(f"on rank 0: {err}")
    return res


# -- tests ----------------------------------------------------------------------------


def test_state_names_match_tracer():
    from scaffoldfem.axons.tracer import STATE_NAMES as TRACER_STATES
    from scaffoldfem.viz.axon_paths import STATE_NAMES

    assert tuple(STATE_NAMES) == tuple(TRACER_STATES)


def test_axon_crossings_and_growth(tmp_path, comm):
    """Plane piercings are interpolated exactly; outcome and growth follow the times."""
    import pyvista as pv

    from scaffoldfem.viz.axon_paths import STATE_NAMES, Axons

    pts = np.array([[0.1, 0.2, -2.0], [0.3, 0.2, 0.0], [0.5, 0.2, 2.0],   # crosses z=-1, 1
                    [-0.4, 0.0, -2.0], [-0.4, 0.0, -1.5]])                # never reaches -1
    poly = pv.PolyData(pts, lines=np.array([3, 0, 1, 2, 2, 3, 4]))
    poly.point_data["t_day"] = np.array([0.0, 10.0, 20.0, 0.0, 5.0])
    # Both ended stalled; the first had crossed the lesion before it stalled.
    poly.cell_data["final_state"] = np.array([2, 2])
    poly.cell_data["crossed"] = np.array([1, 0])
    path = tmp_path / f"a{comm.rank}.vtp"
    poly.save(path)
    ax = Axons.read(path, lesion=(-1.0, 1.0), cross_depth=0.5)
    assert [STATE_NAMES[k] for k in ax.outcome] == ["crossed", "stalled"]
    xy, st, n = ax.crossings(-1.0)
    assert n == 1 and st.tolist() == [1]
    assert np.allclose(xy, [[0.2, 0.2]])  # a quarter of the way from z=-2 to z=0
    xy, _, n = ax.crossings(1.0)
    assert n == 1 and np.allclose(xy, [[0.4, 0.2]])
    # Growing until z >= 1 + 0.5 (the last point only), crossed from there on.
    assert ax.state.tolist() == [0, 0, 1, 0, 2]
    paths, states = ax.grown_until(12.0)
    assert [len(p) for p in paths] == [2, 2] and states.tolist() == [0, 2]
    assert ax.grown_until(20.0)[1].tolist() == [1, 2]


def test_field_scale_log_window():
    from scaffoldfem.viz.style import DECADES, field_scale

    sc = field_scale("BDNF", [np.array([0.0, 5.0, 400.0])], window=(1.0, 100.0))
    assert sc.log and sc.vmax == 400.0
    assert sc.vmin == pytest.approx(min(400 * 10 ** -DECADES, 0.3))
    assert sc.label == "BDNF (ng/mL)"
    assert not field_scale("NT3", [np.zeros(4)]).log


def test_run_info(tmp_path, comm):
    """Lesion, windows and the species drawn come from the study and the metrics."""
    from scaffoldfem.viz.plots import read_run_info

    run = tmp_path / f"r{comm.rank}"
    run.mkdir()
    (run / "study.resolved.toml").write_text(validate_study(
        {"name": "x", "geometry": {"lesion": {"center": "0.5 mm", "length": "3 mm"}}}).to_toml())
    (run / "metrics.json").write_text(json.dumps({
        "species": {"BDNF": {"lesion_auc_ng_day_per_mL": 5.0, "window_ng_per_mL": [2, 50]},
                    "GDNF": {"lesion_auc_ng_day_per_mL": 9.0}},
        "axons": {"seeded": 7}}))
    info = read_run_info(run)
    assert info.lesion == pytest.approx((-1.0, 2.0))
    assert info.cross_depth == pytest.approx(0.5)
    assert info.species[:3] == ["BDNF", "NT3", "GDNF"]  # study order
    assert info.windows["BDNF"] == (2.0, 50.0) and info.windows["NT3"] == (1.0, 100.0)
    assert info.seeded == 7
    assert info.main_species(["BDNF", "NT3", "GDNF", "MMP"]) == "GDNF"  # highest AUC
    assert info.main_species(["NT3", "MMP"]) == "NT3"
    info.final = {"BDNF": 3.0, "NT3": 1e-26, "GDNF": 0.1}  # drawn at the end: BDNF is left
    assert info.main_species(["BDNF", "NT3", "GDNF"]) == "BDNF"


def test_plot_run_pictures(tmp_path, comm):
    """Every picture of a synthetic run is drawn, non-blank, with its expected colours."""
    import imageio.v3 as iio

    from scaffoldfem.viz.plots import plot_run
    from scaffoldfem.viz.style import FIELD_CMAP, STATE_COLOURS
    from scaffoldfem.viz.timeplots import SPECIES_COLOURS

    def draw():
        run = write_run(tmp_path / "run")
        files = plot_run(run, scale=0.5, strict=True)
        stats = {"files": sorted(p.name for p in files)}
        for p in files:
            if p.suffix == ".mp4":
                continue
            img = iio.imread(p)
            if img.ndim == 4:  # GIF frames: check the last one
                stats["frames"] = img.shape[0]
                img = img[-1]
            img = img[..., :3]
            stats[p.name] = {
                "std": float(img.std()),
                "green": hue_share(img, 1, 40),
                "species0": colour_share(img, SPECIES_COLOURS[0], 30),
                "modulus": colour_share(img, "#D55E00", 30),
                "crossed": colour_share(img, STATE_COLOURS["crossed"], 60),
                "cmap": cmap_share(img, FIELD_CMAP),
                "cmap_top": cmap_share(img, FIELD_CMAP, 0.9, 1.0),
            }
        return stats

    from scaffoldfem.viz.slices import ffmpeg_executable

    s = on_root(comm, draw)
    video = ["growth.mp4"] if on_root(comm, ffmpeg_executable) else []
    assert s["files"] == sorted(["cross_sections.png", "cutaway.png", "growth.gif",
                                 "timecourses.png", *video])
    assert s["frames"] == 5
    for name in ["cross_sections.png", "cutaway.png", "growth.gif", "timecourses.png"]:
        assert s[name]["std"] > 25, (name, s[name])  # not a blank canvas
    # Crossed axons (green) in the 3D view, the sections and the animation.
    for name in ("cutaway.png", "cross_sections.png", "growth.gif"):
        assert s[name]["crossed"] > 2e-4, (name, s[name])
    # The field's colormap covers a good part of each field picture, and its top
    # colour (the lesion at the final time is the maximum) shows in the static ones.
    for name in ("cutaway.png", "cross_sections.png", "growth.gif"):
        assert s[name]["cmap"] > 0.04, (name, s[name])
    for name in ("cutaway.png", "cross_sections.png"):
        assert s[name]["cmap_top"] > 5e-3, (name, s[name])
    # Time plots: the first species' curve, the modulus curve, the crossed-axon green.
    tc = s["timecourses.png"]
    assert tc["species0"] > 1e-3 and tc["modulus"] > 5e-4 and tc["green"] > 1e-3, tc


def test_plot_run_without_axons(tmp_path, comm):
    """Axons disabled: the pictures are drawn without them, with no crossed-green."""
    import imageio.v3 as iio

    from scaffoldfem.viz.plots import plot_run
    from scaffoldfem.viz.style import STATE_COLOURS

    def draw():
        run = write_run(tmp_path / "run", cord_grid(h=0.25), n_axons=0, times=[0.0, 28.0])
        (run / "timeseries.csv").unlink()
        # Drawn in two shares, as two ranks of a run do: together, every picture once.
        shares = [[p.name for p in plot_run(run, scale=0.4, strict=True, part=(k, 2))]
                  for k in (0, 1)]
        cut = iio.imread(run / "figures" / "cutaway.png")[..., :3]
        return shares, colour_share(cut, STATE_COLOURS["crossed"], 40)

    shares, green = on_root(comm, draw)
    assert shares == [["growth.gif"], ["cutaway.png", "cross_sections.png"]]
    assert green < 1e-4


@pytest.mark.parametrize("parts", [1, 2, 3, 4, 7])
def test_figures_are_shared_out_once_each_and_balanced(parts):
    from scaffoldfem.viz.plots import _COST, FIGURES, share_figures

    shares = share_figures(parts)
    assert len(shares) == parts
    assert sorted(n for s in shares for n in s) == sorted(FIGURES)  # each once
    if parts == 2:  # the animation alone; all the rest together costs less
        assert shares[0] == {"growth.gif"}
    load = [sum(_COST[n] for n in s) for s in shares]
    # No share could give its cheapest figure to the least loaded and lower the peak.
    for s, w in zip(shares, load, strict=True):
        if len(s) > 1:
            assert min(load) + min(_COST[n] for n in s) >= w


def test_plot_run_survives_a_broken_directory(tmp_path, comm):
    """A corrupt field file and missing slices cost only their pictures."""
    from scaffoldfem.viz.plots import plot_run

    def draw():
        run = write_run(tmp_path / "run", cord_grid(h=0.35), n_axons=8, times=[0.0, 10.0])
        (run / "fields" / "final.vtu").write_text("not a VTK file")
        for f in (run / "fields" / "sagittal").iterdir():
            f.unlink()
        return sorted(p.name for p in plot_run(run, scale=0.3))

    assert on_root(comm, draw) == ["timecourses.png"]
