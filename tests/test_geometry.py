"""Geometry and mesh: region volumes against the analytic values, named groups,
1-vs-2-rank agreement, lesion variants, and refusal of channels that do not fit.

Meshes are built once per session into a temporary cache shared by all ranks.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
from conftest import cli_in_process, serial_only
from mpi4py import MPI
from pydantic import ValidationError

from scaffoldfem.config.geometry import GeometryConfig
from scaffoldfem.config.geometry_fit import ellipse_area_beyond
from scaffoldfem.geometry.build import MeshStats, build_mesh
from scaffoldfem.geometry.cache import ensure_mesh, prune_cache
from scaffoldfem.geometry.loading import load_mesh
from scaffoldfem.geometry.report import facet_counts, mesh_report, region_cells, region_volumes
from scaffoldfem.regions import CELL_TAGS, FACET_TAGS

# Lesion variants (the default 7 × 450 µm channels fit neither the half-slab nor
# the contusion ellipsoid): 3 × 300 µm channels, or one central 450 µm channel.
SMALL_CHANNELS = {"count": 3, "diameter": "300 um", "spacing": "0.5 mm"}
VARIANTS = {
    "hemisection+gap": {"lesion": {"kind": "hemisection", "side": "left"},
                        "cavity": {"gap": "0.1 mm"}, "channels": SMALL_CHANNELS},
    "contusion": {"lesion": {"kind": "contusion"}, "channels": {"count": 1}},
    "transection+gap,ellipse": {"cavity": {"gap": "0.15 mm"},
                                "grey_matter": {"shape": "ellipse"}},
}


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    """One mesh cache, the same directory on every rank (broadcast from rank 0).

    It sits next to pytest's numbered session directories, so the serial and
    the ``mpiexec -n 2`` passes of ``make test`` mesh once between them; the
    cache key includes the builder's source digest, so edits never reuse a
    stale mesh. ``$SCAFFOLDFEM_TEST_MESH_CACHE`` overrides the place.
    """
    path = None
    if MPI.COMM_WORLD.rank == 0:
        path = os.environ.get("SCAFFOLDFEM_TEST_MESH_CACHE") or str(
            tmp_path_factory.getbasetemp().parent / "scaffoldfem-mesh-cache")
        Path(path).mkdir(parents=True, exist_ok=True)
        prune_cache(path)  # meshes of an older builder can never be used again
    return Path(MPI.COMM_WORLD.bcast(path, root=0))


@pytest.fixture(scope="session")
def baseline(cache):
    geom = GeometryConfig()
    return geom, ensure_mesh(geom, MPI.COMM_WORLD, cache)


@pytest.fixture(scope="session")
def baseline_world(baseline):
    _, path = baseline
    return load_mesh(path, MPI.COMM_WORLD)


def test_default_resolution_is_medium_and_named_sizes():
    geom = GeometryConfig()
    assert geom.resolution == "medium"
    sizes = [GeometryConfig(resolution=r).base_size() for r in ("coarse", "medium", "fine")]
    assert sizes == sorted(sizes, reverse=True)
    assert GeometryConfig(resolution="80 um").base_size() == pytest.approx(0.08)


def test_region_volumes_match_analytic(baseline, baseline_world):
    geom, path = baseline
    mesh, cell_tags, facet_tags = baseline_world
    want = geom.analytic_volumes()
    got = region_volumes(mesh, cell_tags)
    assert set(want) - {"cord"} == {"white_matter", "grey_matter", "scar", "scaffold", "channel"}
    for name in set(want) - {"cord"}:
        assert got[name] == pytest.approx(want[name], rel=0.01), name
    assert got["cavity"] == 0.0  # no gap by default: no cavity cells
    assert sum(got.values()) == pytest.approx(want["cord"], rel=0.005)
    # The report shows the same numbers.
    report = mesh_report(geom, path, mesh, cell_tags, facet_tags)
    errors = report.errors()
    assert max(abs(e) for e in errors.values()) < 0.01
    assert abs(errors["cord (total)"]) < 0.005
    text = str(report)
    assert "white_matter" in text and "quality (gamma)" in text


def test_named_groups_present(baseline, baseline_world):
    geom, path = baseline
    mesh, cell_tags, facet_tags = baseline_world
    comm = mesh.comm
    cells = region_cells(cell_tags, comm)
    for name in geom.regions():
        assert cells[name] > 0, name
    assert cells["cavity"] == 0
    facets = facet_counts(facet_tags, comm)
    assert all(facets[name] > 0 for name in FACET_TAGS), facets
    # Every cell is tagged exactly once.
    assert sum(cells.values()) == mesh.topology.index_map(3).size_global
    # The physical names and tags in the file are those of scaffoldfem.regions.
    stats = MeshStats.load(path.with_suffix(".json"))
    assert set(stats.region_cells) == set(geom.regions())
    assert set(stats.facet_counts) == set(FACET_TAGS)
    assert stats.vertices == mesh.geometry.index_map().size_global
    assert 0 < stats.quality_min <= stats.quality_mean <= 1


def test_end_caps_and_pia_areas(baseline_world, baseline):
    """End caps are whole cross-sections, the pia the whole lateral surface."""
    import ufl
    from dolfinx import fem

    geom, _ = baseline
    mesh, _, facet_tags = baseline_world
    ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)
    one = fem.Constant(mesh, 1.0)
    area = {name: mesh.comm.allreduce(fem.assemble_scalar(fem.form(one * ds(tag))))
            for name, tag in FACET_TAGS.items() if name != "scaffold_interface"}
    a, b, L = geom.cord.semi_axis_x, geom.cord.semi_axis_y, geom.cord.length
    h = ((a - b) / (a + b)) ** 2
    perimeter = math.pi * (a + b) * (1 + 3 * h / (10 + math.sqrt(4 - 3 * h)))  # Ramanujan
    assert area["rostral_end"] == pytest.approx(math.pi * a * b, rel=0.005)
    assert area["caudal_end"] == pytest.approx(math.pi * a * b, rel=0.005)
    assert area["pia"] == pytest.approx(perimeter * L, rel=0.005)


def test_same_on_one_and_two_ranks(baseline, baseline_world):
    """Loading on COMM_SELF (whole mesh per rank) and on COMM_WORLD gives the same
    global volumes and counts (a real check under mpiexec -n 2)."""
    _, path = baseline
    world = baseline_world
    alone = load_mesh(path, MPI.COMM_SELF)
    assert world[0].comm.size == MPI.COMM_WORLD.size and alone[0].comm.size == 1
    v_world, v_self = region_volumes(world[0], world[1]), region_volumes(alone[0], alone[1])
    for name in CELL_TAGS:
        assert v_world[name] == pytest.approx(v_self[name], rel=1e-12, abs=1e-12), name
    assert region_cells(world[1], MPI.COMM_WORLD) == region_cells(alone[1], MPI.COMM_SELF)
    assert facet_counts(world[2], MPI.COMM_WORLD) == facet_counts(alone[2], MPI.COMM_SELF)
    assert (world[0].topology.index_map(3).size_global
            == alone[0].topology.index_map(3).size_local)


def test_meshing_twice_gives_the_same_mesh(tmp_path):
    """The default (one Gmsh thread) meshes the same geometry the same way every time,
    so a study's answer does not depend on which machine or cache made its mesh."""
    import meshio

    geom = GeometryConfig(resolution="0.5 mm", cord={"length": "6 mm"})
    meshes = []
    for name in ("a", "b"):
        build_mesh(geom, tmp_path / f"{name}.msh")
        meshes.append(meshio.read(tmp_path / f"{name}.msh"))
    a, b = meshes
    assert len(a.points) > 1000 and np.array_equal(a.points, b.points)
    assert [c.type for c in a.cells] == [c.type for c in b.cells]
    assert all(np.array_equal(x.data, y.data) for x, y in zip(a.cells, b.cells, strict=True))


@pytest.mark.parametrize("name", list(VARIANTS))
def test_lesion_variants_mesh_with_right_volumes(name, cache):
    geom = GeometryConfig(**VARIANTS[name])
    path = ensure_mesh(geom, MPI.COMM_WORLD, cache)
    stats = MeshStats.load(path.with_suffix(".json"))
    want = geom.analytic_volumes()
    assert set(stats.region_volumes) == set(want) - {"cord"}
    for region, vol in stats.region_volumes.items():
        assert vol == pytest.approx(want[region], rel=0.01), region
    assert sum(stats.region_volumes.values()) == pytest.approx(want["cord"], rel=0.005)
    assert all(stats.facet_counts[f] > 0 for f in FACET_TAGS)
    if geom.cavity.gap > 0:
        assert stats.region_cells["cavity"] > 0


def test_committed_tiny_mesh_loads_with_the_region_table(comm):
    """meshes/tiny_transection.msh (baseline geometry at 0.4 mm) loads without
    Gmsh meshing; DOLFINx volumes equal the Gmsh ones stored beside it."""
    path = Path(__file__).resolve().parents[1] / "meshes" / "tiny_transection.msh"
    mesh, cell_tags, facet_tags = load_mesh(path, comm)
    stats = MeshStats.load(path.with_suffix(".json"))
    vols = region_volumes(mesh, cell_tags)
    for name, vol in stats.region_volumes.items():
        assert vols[name] == pytest.approx(vol, rel=1e-10), name
    assert region_cells(cell_tags, comm) == {k: stats.region_cells.get(k, 0) for k in CELL_TAGS}
    assert facet_counts(facet_tags, comm) == stats.facet_counts
    cord = GeometryConfig().analytic_volumes()["cord"]
    assert sum(vols.values()) == pytest.approx(cord, rel=0.02)  # 0.4 mm, 12 per turn: -1.2 %


def test_cache_reuses_mesh_and_leaves_no_temp_files(baseline, cache):
    geom, path = baseline
    mtime = path.stat().st_mtime_ns
    # What does not change the mesh keeps the hash; a geometric change, or parallel
    # meshing (a different mesh at each meshing), changes it.
    same = GeometryConfig(max_cells=10**8)
    assert same.geometry_hash() == geom.geometry_hash()
    assert ensure_mesh(same, MPI.COMM_WORLD, cache) == path
    assert path.stat().st_mtime_ns == mtime
    threaded = {GeometryConfig(mesh={"num_threads": n}).geometry_hash() for n in (0, 2, 3)}
    assert len(threaded) == 1 and geom.geometry_hash() not in threaded
    assert GeometryConfig(scar={"thickness": "0.25 mm"}).geometry_hash() != geom.geometry_hash()
    if MPI.COMM_WORLD.rank == 0:
        leftovers = [p.name for p in cache.iterdir() if p.name.startswith(".")]
        assert leftovers == []


# -- analytic volumes ----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["transection", "hemisection", "contusion"])
def test_analytic_volumes_partition_the_cord(kind):
    geom = GeometryConfig(lesion={"kind": kind}, cavity={"gap": "0.05 mm"},
                          channels=SMALL_CHANNELS)
    vols = geom.analytic_volumes()
    assert sum(v for k, v in vols.items() if k != "cord") == pytest.approx(vols["cord"], rel=1e-12)
    assert all(v > 0 for v in vols.values())


def test_analytic_volumes_independent_checks():
    # Hemisection with no scar removes exactly half the (symmetric) grey matter
    # over the lesion length.
    g = GeometryConfig(lesion={"kind": "hemisection"}, scar={"thickness": "0 mm"},
                       channels={"count": 0})
    grey = g.grey_matter.area()
    assert g.analytic_volumes()["grey_matter"] == pytest.approx(grey * (10 - 2 / 2), rel=1e-6)
    # Ellipse segment: half and whole.
    assert ellipse_area_beyond(2.0, 1.0, 0.0) == pytest.approx(math.pi)
    assert ellipse_area_beyond(2.0, 1.0, -2.0) == pytest.approx(2 * math.pi)
    # Contusion grey removal against a Monte Carlo estimate of grey ∩ ellipsoid.
    g = GeometryConfig(lesion={"kind": "contusion"}, channels={"count": 0})
    rng = np.random.default_rng(1)
    a, b, c = 1.2, 1.0, 1.2  # lesion + scar ellipsoid semi-axes
    pts = rng.uniform(-1, 1, (400_000, 3)) * (a, b, c)
    in_ell = (pts[:, 0] / a) ** 2 + (pts[:, 1] / b) ** 2 + (pts[:, 2] / c) ** 2 <= 1
    phi = np.arctan2(pts[:, 1], pts[:, 0])
    in_grey = np.hypot(pts[:, 0], pts[:, 1]) <= g.grey_matter.radial(phi)
    removed_mc = np.mean(in_ell & in_grey) * 8 * a * b * c
    removed = g.grey_matter.area() * g.cord.length - g.analytic_volumes()["grey_matter"]
    assert removed == pytest.approx(removed_mc, rel=0.02)


def test_channel_layouts():
    hexa = GeometryConfig().channel_centres()
    rings = GeometryConfig(channels={"layout": "rings"}).channel_centres()
    # Seven channels: the centre and a ring of six at the spacing, both ways.
    key = sorted((round(x, 9), round(y, 9)) for x, y in hexa)
    assert key == sorted((round(x, 9), round(y, 9)) for x, y in rings)
    radii = sorted(math.hypot(x, y) for x, y in hexa)
    assert radii[0] == pytest.approx(0, abs=1e-12)
    assert radii[1:] == pytest.approx([0.7] * 6)
    explicit = GeometryConfig(**_explicit((0, 0), (0.7, 0.1))).channel_centres()
    assert explicit == [(0.0, 0.0), (0.7, 0.1)]
    # A left hemisection puts its channels in x < 0, clear of the midline.
    left = GeometryConfig(**VARIANTS["hemisection+gap"]).channel_centres()
    assert all(x < -0.1 - 0.15 for x, _ in left)


# -- refusals ---------------------------------------------------------------------------


def _explicit(*centres, diameter="450 um", min_wall="0.1 mm"):
    return {"channels": {"layout": "explicit", "count": len(centres), "diameter": diameter,
                         "min_wall": min_wall,
                         "centres": [[f"{x} mm", f"{y} mm"] for x, y in centres]}}


@pytest.mark.parametrize(("kwargs", "message"), [
    (_explicit((0, 0), (0.4, 0)), "channels 1 and 2 overlap by 0.05 mm"),
    (_explicit((0, 0), (0.5, 0)), "wall between channels 1 and 2 is 0.05 mm, 0.05 mm thinner "
                                  "than min_wall 0.1 mm"),
    (_explicit((0, 0), (1.3, 0)), "channel 2 crosses the scaffold border by 0.125 mm"),
    (_explicit((0, 0), (1.1, 0)), "wall between channel 2 and the scaffold border is 0.075 mm, "
                                  "0.025 mm thinner than min_wall 0.1 mm"),
    ({"channels": {"spacing": "0.4 mm"}}, "neighbouring channels overlap by 0.05 mm"),
    ({"channels": {"count": 19}}, "only 7 of 19 channels of 0.45 mm fit"),
    ({"lesion": {"kind": "hemisection"}}, "only 1 of 7 channels"),
    ({"channels": {"layout": "rings", "count": 8}}, "channel 8 crosses the scaffold border"),
])
def test_channels_that_do_not_fit_are_refused(kwargs, message):
    with pytest.raises(ValidationError) as info:
        GeometryConfig(**kwargs)
    errors = info.value.errors(include_url=False)
    assert [e["loc"] for e in errors] == [("channels",)]
    assert message in errors[0]["msg"]
    assert not errors[0]["msg"].startswith("Value error")


@pytest.mark.parametrize(("kwargs", "loc", "message"), [
    ({"grey_matter": {"semi_axis_x": "1.3 mm"}}, "grey_matter", "grey matter reaches past the "
                                                               "cord surface by"),
    ({"cord": {"length": "2.2 mm"}}, "scar", "reaches past the rostral end (z = -1.1 mm) by "
                                             "0.1 mm"),
    ({"lesion": {"kind": "contusion", "semi_axis_y": "1 mm"}}, "scar",
     "semi-axis y (1.2 mm) reaches the cord surface (semi_axis_y 1.1 mm) by 0.1 mm"),
    ({"cavity": {"gap": "1 mm"}}, "cavity", "gap 1 mm leaves no scaffold"),
    ({"resolution": "ultra"}, "resolution", "expected one of coarse, medium, fine"),
    ({"resolution": "-1 mm"}, "resolution", "mesh size must be > 0"),
])
def test_geometry_problems_are_refused(kwargs, loc, message):
    with pytest.raises(ValidationError) as info:
        GeometryConfig(**kwargs)
    errors = info.value.errors(include_url=False)
    assert (loc,) in [e["loc"] for e in errors]
    assert any(message in e["msg"] for e in errors), errors


def test_assignment_that_breaks_the_fit_is_refused():
    geom = GeometryConfig()
    with pytest.raises(ValidationError, match=r"overlap by 0\.05 mm"):
        geom.channels = {"spacing": "0.4 mm"}


@serial_only
def test_cli_check_reports_channel_overlap(tmp_path):
    study = tmp_path / "bad.toml"
    study.write_text('[geometry.channels]\nlayout = "explicit"\ncount = 2\n'
                     'centres = [["0 mm", "0 mm"], ["0.4 mm", "0 mm"]]\n')
    r = cli_in_process("check", str(study))
    assert r.returncode == 2, r.stderr
    assert "geometry.channels: channels 1 and 2 overlap by 0.05 mm" in r.stderr.splitlines()
    assert "Traceback" not in r.stderr


def test_meshing_api_in_one_import():
    """run/, sweep/ and bench/ import the meshing API from geometry.meshing."""
    import scaffoldfem.geometry.meshing as meshing

    for name in ("ensure_mesh", "load_mesh", "mesh_report", "bench_meshing", *meshing.__all__):
        assert callable(getattr(meshing, name)), name
