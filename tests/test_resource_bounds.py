"""Bounded inputs: nothing a user types makes ``check`` hang or a run exhaust memory (issue 13).

* Quantities are ``<number> <unit>``: arithmetic (``"9**9**9 mm"`` hung pint), a bare
  unit or a bare number is refused at once.
* The mesh size is estimated from the geometry before meshing and refused over
  ``geometry.max_cells`` (the estimate is checked against the real coarse mesh).
* Channel counts are bounded and the overlap test is vectorised (20,000 channels
  hung it); growth cones are bounded by memory; sweeps by their number of cases.
* Counts take integers only (``count = true`` was read as 1).
"""

from __future__ import annotations

import re
import time

import pytest
from conftest import ROOT, run_cli, serial_only

from scaffoldfem.config.geometry import DEFAULT_MAX_CELLS
from scaffoldfem.config.study import load_study
from scaffoldfem.errors import StudyError
from scaffoldfem.sweep.plan import MAX_CASES, load_sweep

BASELINE = ROOT / "studies" / "baseline.toml"


def refused(*overrides) -> list[str]:
    with pytest.raises(StudyError) as err:
        load_study(None, list(overrides))
    return err.value.lines


@serial_only
def test_cli_refuses_unit_arithmetic_fast():
    t0 = time.perf_counter()
    r = run_cli("check", str(BASELINE), "--set", 'geometry.lesion.length="9**9**9 mm"',
                timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines() == [
        "geometry.lesion.length: cannot read '9**9**9 mm' as a quantity: '**9**9 mm' is not a "
        "plain unit (no arithmetic, one exponent per unit); expected '<number> <unit>' such "
        "as '2 mm' or '12.6e-7 cm^2/s'"]
    assert time.perf_counter() - t0 < 30  # python start-up; the refusal itself is instant


BAD_QUANTITIES = [
    ("9**9**9 mm", "is not a plain unit"),
    ("2 mm**99**99", "is not a plain unit"),
    ("2 mm + 3 mm", "is not a plain unit"),
    ("2*mm", "is not a plain unit"),
    ("(2) mm", "needs a number first"),
    ("mm", "needs a number first"),  # a bare unit is not 1 mm
    ("2", "needs a unit"),
    ("nan mm", "needs a number first"),
    ("1e999 mm", "must be finite"),
    ("2 furlongs_per_fortnight", "unknown unit"),
    ("2 mm" + " " * 80, "longer than 64 characters"),
]


def test_quantities_are_a_number_and_a_unit():
    for value, needle in BAD_QUANTITIES:
        t0 = time.perf_counter()
        lines = refused(("geometry.lesion.length", value))
        assert time.perf_counter() - t0 < 1.0
        assert len(lines) == 1 and lines[0].startswith("geometry.lesion.length: "), lines
        assert needle in lines[0] and repr(value) in lines[0], lines


def test_plain_unit_expressions_still_read():
    s = load_study(None, [("species.BDNF.diffusivity_free", "1 mm^2/day"),
                          ("species.BDNF.half_life", "0.25 day"),
                          ("scaffold.hydrolysis_rate", "0.5 1/day"),
                          ("species.BDNF.uptake.vmax", "1 ng/(mL*day)"),
                          ("cells.cohorts.0.density", "1e5 cell mm^-3")])
    assert s.species[0].diffusivity_free == pytest.approx(1.0)
    assert s.species[0].uptake.vmax == pytest.approx(1.0)
    assert s.cells.cohorts[0].density == pytest.approx(1e5)


@serial_only
def test_cell_estimate_matches_the_real_coarse_mesh():
    # The mesh cache usually holds it; meshing coarse takes a few seconds otherwise.
    r = run_cli("mesh", str(BASELINE), "--set", "geometry.resolution=coarse", timeout=300)
    assert r.returncode == 0, r.stderr
    actual = int(re.search(r"(\d+) vertices, (\d+) cells", r.stdout).group(2))
    estimate = load_study(None, ["geometry.resolution='coarse'"]).geometry.estimate_cells()
    assert 1 / 1.5 < estimate / actual < 1.5, (estimate, actual)


def test_named_resolutions_estimate_within_their_known_sizes():
    # Cell counts of meshes/README.md (Gmsh 4.15): within 15 %, and fine well below the limit.
    for name, cells in (("coarse", 156_196), ("medium", 423_362), ("fine", 1_190_127)):
        est = load_study(None, [f"geometry.resolution='{name}'"]).geometry.estimate_cells()
        assert abs(est / cells - 1) < 0.15, (name, est)
        assert est < DEFAULT_MAX_CELLS / 3


def test_a_mesh_over_the_limit_is_refused_before_meshing():
    t0 = time.perf_counter()
    lines = refused("geometry.resolution='1e-6 mm'")
    assert time.perf_counter() - t0 < 2.0
    assert len(lines) == 1 and lines[0].startswith("geometry.resolution: at resolution '1e-6 mm'")
    assert "cells" in lines[0] and "kB per cell" in lines[0] and "geometry.max_cells" in lines[0]
    line = refused("geometry.resolution='0.03 mm'")[0]
    assert re.search(r"about [\d,]+ cells .* about \d+ GB", line), line
    # Raised deliberately, the same resolution passes.
    s = load_study(None, ["geometry.resolution='0.03 mm'", "geometry.max_cells=50000000"])
    assert s.geometry.estimate_cells() > DEFAULT_MAX_CELLS
    # The limit never changes the mesh (nor its cache key).
    assert s.geometry.geometry_hash() == load_study(
        None, ["geometry.resolution='0.03 mm'", "geometry.max_cells=60000000"]
    ).geometry.geometry_hash()


def test_twenty_thousand_channels_are_refused_fast():
    centres = [[f"{0.001 * i} mm", "0 mm"] for i in range(20_000)]
    t0 = time.perf_counter()
    lines = refused(("geometry.channels.layout", "explicit"),
                    ("geometry.channels.count", 20_000), ("geometry.channels.centres", centres))
    assert time.perf_counter() - t0 < 5.0
    assert "geometry.channels.count: input should be less than or equal to 500 (got 20000)" in lines
    t0 = time.perf_counter()
    lines = refused("geometry.channels.count=20000")
    assert time.perf_counter() - t0 < 5.0 and len(lines) == 1


def test_the_overlap_test_scales_and_stays_one_line():
    # 500 overlapping channels: 125k pairs, all checked, five listed.
    t0 = time.perf_counter()
    lines = refused(("geometry.channels.layout", "rings"), ("geometry.channels.count", 500),
                    ("geometry.channels.spacing", "0.05 mm"),
                    ("geometry.channels.diameter", "0.02 mm"))
    assert time.perf_counter() - t0 < 2.0
    assert len(lines) == 1 and lines[0].startswith("geometry.channels: wall between channels 1")
    assert re.search(r"and \d+ more such problem\(s\)$", lines[0])


@serial_only
def test_cli_refuses_a_billion_axons_with_the_estimate():
    r = run_cli("check", str(BASELINE), "--set", "axons.count=1000000000", timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("axons.count: 1,000,000,000 growth cones would need about ")
    assert "kB per cone" in line and "limit of 10,000,000 cones" in line and "use at most" in line


def test_axon_counts_are_integers_and_bounded_by_memory():
    assert refused("axons.count=1e9") == [
        "axons.count: expected a whole number written as one, e.g. 500 (got 1000000000.0)"]
    assert refused("axons.count=true") == [
        "axons.count: expected a number, not a boolean (got true)"]
    lines = refused("axons.sensory=true", "axons.sensory_count=100000000")
    assert len(lines) == 1 and lines[0].startswith("axons.sensory_count: 100,000,500 growth")
    assert load_study(None, ["axons.count=5000"]).axons.count == 5000


def test_booleans_are_not_counts():
    for key in ("geometry.channels.count", "axons.seed", "axons.record_every",
                "geometry.mesh.num_threads", "mechanics.degree", "scaffold.porosity"):
        assert refused(f"{key}=true") == [f"{key}: expected a number, not a boolean (got true)"]


def test_sweeps_are_bounded_before_their_cases_are_made(tmp_path):
    values = ", ".join(f"{0.5 + i * 1e-4:.4f}" for i in range(101))
    path = tmp_path / "big.toml"
    path.write_text(f'[grid]\n"scaffold.porosity" = [{values}]\n"scaffold.poisson" = [{values}]\n'
                    f'"axons.seed" = [{", ".join(map(str, range(100)))}]\n')
    t0 = time.perf_counter()
    with pytest.raises(StudyError) as err:
        load_sweep(path)
    assert time.perf_counter() - t0 < 2.0
    assert err.value.lines == [f"{path}: the sweep has 1,020,100 cases, over the limit of "
                               f"{MAX_CASES:,}: split it, or sample it ([sample] n = ...)"]
    path.write_text('[sample]\nn = 20000\n[sample.ranges]\n"scaffold.porosity" = [0.6, 0.9]\n')
    with pytest.raises(StudyError, match="20,000 cases, over the limit"):
        load_sweep(path)
