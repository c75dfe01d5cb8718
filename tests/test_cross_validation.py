"""Cross-field validation at ``check`` time: garbage that used to pass is refused, one
line ``key: message`` with the value each (issue 13).

Regions named by a study must exist in the geometry it builds (decided from the
configuration, no meshing), species names are unique, per-species keys name a
species, ``[solver.*]`` sections name a solver, NaN and infinity are refused in
every number, and sweep cases that are equal once units are converted are refused.
"""

from __future__ import annotations

import pytest
from conftest import ROOT, cli_in_process, serial_only

from scaffoldfem.config.study import Study, load_study
from scaffoldfem.errors import StudyError
from scaffoldfem.sweep.plan import load_sweep

BASELINE = ROOT / "studies" / "baseline.toml"
NO_SCAR = ("geometry.scar.thickness='0 mm'",)

#: (overrides, the one line expected, or its start)
GARBAGE = [
    # a dose into a region the geometry does not have (zero gap: no cavity)
    (["species.NT3.doses.0.region='cavity'"],
     "species[1].doses[0].region: 'cavity' is not a region of this geometry "
     "(geometry.cavity.gap = 0 mm); its regions: white_matter, grey_matter, scar, scaffold, "
     "channel, scaffold_interface (a dose of NT3)"),
    (["cells.cohorts.0.regions=['channel']", "geometry.channels.count=0"],
     "cells.cohorts[0].regions: 'channel' is not a region of this geometry "
     "(geometry.channels.count = 0)"),
    (["cells.cohorts.0.secretion.VEGF='1e-6 ng/cell/day'"],
     "cells.cohorts[0].secretion.VEGF: no species 'VEGF' in this study"),
    (["axons.seeding_regions=['grey_matter']", "geometry.grey_matter.enabled=false"],
     "axons.seeding_regions: 'grey_matter' is not a region of this geometry "
     "(geometry.grey_matter.enabled = false)"),
    (["axons.barrier_regions=['scar']", *NO_SCAR],
     "axons.barrier_regions: 'scar' is not a region of this geometry "
     "(geometry.scar.thickness = 0 mm)"),
    (["enzymes.MMP-2.regions=['scar']", *NO_SCAR],
     "enzymes[1].regions: 'scar' is not a region of this geometry"),
    (["inflammation.neutrophils.regions=['scar']", *NO_SCAR],
     "inflammation.neutrophils.regions: 'scar' is not a region of this geometry"),
    # carriers that could never work in this study
    (["species.BDNF.carriers=[{preset='mmp_cleavable_peg', loading='100 ng/mL'}]",
      "enzymes=[]"],
     "species[0].carriers[0].specificity: none of its enzymes (MMP2, MMP9) is in this "
     "study's [[enzymes]] (none)"),
    (["species.BDNF.carriers=[{preset='ros_responsive', loading='100 ng/mL'}]",
      "ros.enabled=false"],
     "species[0].carriers[0].law: 'ros_cleavable' needs the ROS field, but ros.enabled = false"),
    (["scavengers=[{region='cavity'}]"],
     "scavengers[0].region: 'cavity' is not a region of this geometry"),
    (["enzymes.MMP-2.name='MMP-9'"], "enzymes[1].name: duplicate enzyme name 'MMP-9'"),
    # duplicate species
    (["species.GDNF.name='BDNF'"],
     "species[2].name: duplicate species name 'BDNF' (also species[0])"),
    # per-species and per-field keys
    (["axons.receptor_kd.BNDF='5 ng/mL'"],
     "axons.receptor_kd.BNDF: no species 'BNDF' in this study (got 5 ng/mL; species: BDNF, "
     "NT3, GDNF)"),
    (["axons.receptor_kd.NT-3='5 ng/mL'"], "axons.receptor_kd.NT-3: no species 'NT-3'"),
    (["solver.transprot.ksp_rtol=1e-10"],
     "solver.transprot: unknown solver section (got [solver.transprot]); known: transport"),
    # NaN and infinity, anywhere
    (["tissue.tortuosity_axial=inf"], "tissue.tortuosity_axial: input should be a finite number "
                                      "(got inf)"),
    (["scaffold.porosity=nan"], "scaffold.porosity: input should be a finite number (got nan)"),
    (["solver.transport.ksp_rtol=inf"], "solver.transport.ksp_rtol: must be a finite number "
                                        "(got inf)"),
    (["inflammation.neutrophils.profile='table'",
      "inflammation.neutrophils.table=[[0.0, 1.0], [2.0, nan]]"],
     "inflammation.neutrophils.table[1][1]: input should be a finite number (got nan)"),
    (["inflammation.neutrophils.profile='table'",
      "inflammation.neutrophils.table=[[0.0, 1.0], [2.0, -5.0]]"],
     "inflammation.neutrophils.table: needs at least two (day, presence) rows with increasing "
     "days from 0 and non-negative values (got [[0.0, 1.0], [2.0, -5.0]])"),
    (["time.dt='inf day'"], "time.dt: cannot read 'inf day' as a quantity"),
    # a bare unit, booleans for numbers
    (["geometry.lesion.length='mm'"], "geometry.lesion.length: cannot read 'mm' as a quantity: "
                                      "needs a number first"),
    (["geometry.channels.count=true"], "geometry.channels.count: expected a number, not a "
                                       "boolean (got true)"),
    (["scaffold.porosity=true"], "scaffold.porosity: expected a number, not a boolean (got true)"),
    # a cross-section rule, now with its value
    (["axons.seed_offset='0.1 mm'"],
     "axons.seed_offset: must exceed geometry.scar.thickness (0.2 mm) so that growth cones "
     "start in host tissue outside the scar rim (got 0.1 mm)"),
]


def test_garbage_is_refused_in_one_line_naming_the_key():
    # One test for the whole table (each test costs a collective teardown).
    for overrides, line in GARBAGE:
        with pytest.raises(StudyError) as err:
            load_study(None, overrides)
        assert len(err.value.lines) == 1, (overrides, err.value.lines)
        assert err.value.lines[0].startswith(line), (overrides, err.value.lines)
        assert "{got" not in err.value.lines[0]  # no unformatted template


def test_defaults_that_name_absent_regions_or_species_still_pass():
    # The documented defaults adapt: barrier 'cavity' without a cavity, cells in
    # 'channel' without channels, K_d for NT-3 without an NT-3 species, enzyme in a
    # scar of zero thickness.
    s = load_study(None, ["geometry.channels.count=0", *NO_SCAR,
                          "axons.seed_offset='0.4 mm'", "species.1.name='VEGF'"])
    assert "channel" not in s.geometry.regions() and "scar" not in s.geometry.regions()
    assert s.axons.barrier_regions == ["cavity"] and "NT-3" in s.axons.receptor_kd
    # ... and a region that does exist is accepted, set by the study.
    s = load_study(None, ["geometry.cavity.gap='0.1 mm'", "species.NT3.doses.0.region='cavity'",
                          "axons.barrier_regions=['cavity', 'scar']",
                          "axons.receptor_kd.NT3='5 ng/mL'", "solver.mechanics.ksp_rtol=1e-9"])
    assert "cavity" in s.geometry.regions() and s.axons.kd("NT3") == pytest.approx(5.0)


def test_regions_come_from_the_configuration():
    assert Study().geometry.regions() == ["white_matter", "grey_matter", "scar", "scaffold",
                                          "channel"]
    g = load_study(None, ["geometry.cavity.gap='0.1 mm'", "geometry.grey_matter.enabled=false"]
                   ).geometry
    assert g.regions() == ["white_matter", "scar", "scaffold", "channel", "cavity"]
    assert set(g.regions()) == set(g.analytic_volumes()) - {"cord"}


def test_all_problems_are_reported_at_once():
    with pytest.raises(StudyError) as err:
        load_study(None, ["species.NT3.doses.0.region='cavity'", "species.GDNF.name='BDNF'",
                          "solver.bdnf.ksp_rtol=1e-8"])
    keys = [line.split(":", 1)[0] for line in err.value.lines]
    assert keys == ["species[1].doses[0].region", "species[2].name", "solver.bdnf"]


@serial_only
def test_cli_dose_into_a_missing_cavity_exits_2_in_one_line():
    r = cli_in_process("check", str(BASELINE), "--set", "species.NT3.doses.0.region='cavity'")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("species[1].doses[0].region: 'cavity' is not a region")


def test_sweep_cases_equal_after_unit_conversion_are_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[grid]\n"scaffold.solid_modulus" = ["1 MPa", "1000 kPa", "2 MPa"]\n')
    with pytest.raises(StudyError) as err:
        load_sweep(path)
    assert err.value.lines[1:] == [
        "c001-solid_modulus1000kPa: same study as case c000-solid_modulus1MPa (the values are "
        "equal after unit conversion): remove one of them"]
    path.write_text('[[cases]]\n"time.dt" = "12 h"\n[[cases]]\n"time.dt" = "0.5 day"\n')
    with pytest.raises(StudyError, match=r"c001-dt0\.5day: same study as case c000-dt12h"):
        load_sweep(path)
