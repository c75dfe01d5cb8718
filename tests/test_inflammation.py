"""The injury's inflammatory timeline, ROS and the two gelatinases (pure functions, 0-D).

Windows asserted are those of the defaults' sources (scaffoldfem/config/inflammation.py):
neutrophils peak ~24 h and clear within ~1 week (Hellenbrand et al. 2021); macrophages
peak ~1 week and persist (Kigerl et al. 2009; Kwiecien et al. 2020); MMP-9 is maximal at
24 h, markedly reduced by 72 h and gone at 7 d (Noble et al. 2002); MMP-2 rises from day 5,
increases between 7 and 14 d (de Castro et al. 2000; Hsu et al. 2006) and stays elevated
at 21 d (Goussev et al. 2003).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from scaffoldfem.config.inflammation import (
    EnzymeEntry,
    InflammationConfig,
    ROSConfig,
    default_enzymes,
    enzyme_problems,
    species_tortuosity,
    stokes_einstein_diffusivity,
    tortuosity_for_mass,
)
from scaffoldfem.config.study import format_errors
from scaffoldfem.physics.inflammation import (
    auc,
    enzyme_decay_rate,
    nanomolar,
    peak_time,
    presence,
    ros_decay_length,
    ros_decay_rate,
    well_mixed,
    well_mixed_enzyme,
    well_mixed_ros,
)
from scaffoldfem.units import parse_quantity

T = np.linspace(0.0, 56.0, 56 * 100 + 1)  # 0.01-day samples over 8 weeks
TIMELINE = InflammationConfig()
MMP9, MMP2 = default_enzymes()


def at(values: np.ndarray, day: float) -> float:
    return float(np.interp(day, T, values))


def test_neutrophils_peak_at_one_day_and_clear_within_a_week():
    p = presence(T, TIMELINE, "neutrophils")
    tp, peak = peak_time(T, p)
    assert tp == pytest.approx(1.0, abs=0.02) and peak == pytest.approx(1.0, abs=1e-6)
    assert at(p, 7.0) < 0.10 * peak
    assert presence(7.0, TIMELINE, "neutrophils") == pytest.approx(7.0 * math.exp(-6.0))


def test_macrophages_peak_at_one_week_and_persist():
    p = presence(T, TIMELINE, "macrophages")
    tp, _ = peak_time(T, p)
    assert tp == pytest.approx(7.0, abs=0.05)
    assert at(p, 28.0) > 0.30  # still present at 4 weeks (Kwiecien 2020: maximal over weeks 1-4)
    assert np.all(p[T > 7.0] >= TIMELINE.macrophages.persistent_fraction - 1e-12)


def test_astrocyte_drive_rises_from_day_three_to_five():
    p = presence(T, TIMELINE, "astrocytes")
    assert at(p, 3.0) < 0.2 < 0.4 < at(p, 5.0)
    assert peak_time(T, p)[0] == pytest.approx(10.0, abs=0.05)


def test_mmp9_peaks_within_a_day_and_is_gone_by_day_seven():
    c = well_mixed_enzyme(T, MMP9, TIMELINE)
    tp, cp = peak_time(T, c)
    assert 0.5 <= tp <= 1.5
    assert at(c, 3.0) < 0.5 * cp  # markedly reduced by 72 h
    assert at(c, 7.0) < 0.05 * cp
    assert 20.0 < cp < 100.0  # ng/mL, the documented target ~50 ng/mL (0.5 nM)
    assert nanomolar(cp, MMP9.molar_mass) == pytest.approx(cp / 92.0)


def test_mmp2_peaks_between_one_and_two_weeks_and_stays_elevated():
    c = well_mixed_enzyme(T, MMP2, TIMELINE)
    tp, cp = peak_time(T, c)
    assert 7.0 <= tp <= 14.0
    assert at(c, 3.0) < 0.1 * cp and at(c, 21.0) > 0.3 * cp
    assert 5.0 < cp < 50.0


def test_well_mixed_is_exact_for_a_linear_source():
    k, a, b = 0.7, 3.0, 2.0  # dc/dt = a + b t − k c, c(0) = 0
    t = np.array([0.0, 0.3, 1.0, 2.5, 6.0])
    exact = (a - b / k) / k * (1.0 - np.exp(-k * t)) + b * t / k
    np.testing.assert_allclose(well_mixed(t, a + b * t, k), exact, rtol=1e-13)
    stiff = well_mixed(t, a + b * t, 3e4)  # follows S/k (ROS regime), no overflow
    np.testing.assert_allclose(stiff[1:], (a + b * t[1:]) / 3e4, rtol=1e-4)


def test_ros_peak_is_micromolar_and_local():
    ros = ROSConfig()
    c = well_mixed_ros(T, ros, TIMELINE)
    tp, cp = peak_time(T, c)
    assert 0.9 <= tp <= 1.5
    assert 0.5 < nanomolar(cp, ros.molar_mass) / 1000.0 < 2.0  # µM, 1 µM = 34 ng/mL
    assert ros_decay_rate(ros) == pytest.approx(math.log(2) / (2.2 / 86400.0))
    assert 0.08 < ros_decay_length(ros) < 0.1  # mm: not resolved by 0.1 mm cells


def test_treatment_reduces_ros_auc_by_its_fraction():
    for reduction in (0.25, 0.6):
        _check_treatment(reduction)


def _check_treatment(reduction: float) -> None:
    treated = InflammationConfig(treatment={
        "enabled": True, "start": "0 day", "end": "1000 day",
        "neutrophil_reduction": reduction, "macrophage_reduction": reduction})
    ros = ROSConfig()
    base = auc(T, well_mixed_ros(T, ros, TIMELINE))
    assert auc(T, well_mixed_ros(T, ros, treated)) / base == pytest.approx(1 - reduction,
                                                                           rel=1e-12)
    # Astrocytes, hence MMP-2, are not affected.
    np.testing.assert_array_equal(well_mixed_enzyme(T, MMP2, treated),
                                  well_mixed_enzyme(T, MMP2, TIMELINE))
    # A 2-day course removes part of the early, neutrophil-driven burden only.
    short = InflammationConfig(treatment={"enabled": True, "neutrophil_reduction": reduction,
                                          "macrophage_reduction": reduction})
    assert 1 - reduction < auc(T, well_mixed_ros(T, ros, short)) / base < 1.0


def test_size_defaults():
    ngf = parse_quantity("12.6e-7 cm^2/s", "mm**2/day")
    assert stokes_einstein_diffusivity(26.0) == pytest.approx(ngf)
    assert MMP9.diffusivity_free == pytest.approx(ngf * (26 / 92) ** (1 / 3))
    assert tortuosity_for_mass(0.05) == 1.6 and tortuosity_for_mass(26.0) == pytest.approx(2.14)
    assert 2.14 < MMP2.tortuosity < MMP9.tortuosity < 2.4
    assert species_tortuosity("BDNF") == 2.14 and species_tortuosity("glutamate") == 1.6
    mine = EnzymeEntry(name="X", molar_mass="50 kDa", tortuosity=1.8, half_life="1 day",
                       driver="macrophages", amplitude="1 ng/mL/day", regions=["scar"])
    assert mine.tortuosity == 1.8  # a given value is kept
    for e in (MMP9, MMP2, mine):  # the resolved study reads back to the same entry
        assert EnzymeEntry(**e.model_dump(mode="json")) == e
    assert enzyme_decay_rate(mine.model_copy(update={"timp_rate": 0.5})) == pytest.approx(
        math.log(2) + 0.5)


def _lines(cls, **data) -> list[str]:
    with pytest.raises(ValidationError) as err:
        cls(**data)
    return format_errors(err.value)


ENTRY = dict(name="MMP-9", molar_mass="92 kDa", half_life="2 h", driver="neutrophils",
             amplitude="420 ng/mL/day", regions=["lesion"])


BAD = [
    (EnzymeEntry, {**ENTRY, "half_life": "-1 h"}, "half_life: must be > 0 (got"),
    (EnzymeEntry, {**ENTRY, "driver": "lymphocytes"}, "driver: "),
    (EnzymeEntry, {**ENTRY, "regions": ["spleen"]}, "regions[0]: "),
    (EnzymeEntry, {**ENTRY, "molar_mass": "92 kg/s"}, "molar_mass: wrong dimension"),
    (EnzymeEntry, {**ENTRY, "timp_rate": "-1 1/day"}, "timp_rate: must be >= 0"),
    (ROSConfig, {"half_life": "0 s"}, "half_life: must be > 0 (got"),
    (InflammationConfig, {"neutrophils": {"shape": 0.5}}, "neutrophils.shape: "),
    (InflammationConfig, {"macrophages": {"persistent_fraction": 1.0}},
     "macrophages.persistent_fraction: "),
    (InflammationConfig, {"astrocytes": {"profile": "table", "table": [[5, 1.0], [3, 0.5]]}},
     "astrocytes.table: needs at least two (day, presence) rows"),
    (InflammationConfig, {"treatment": {"start": "3 day", "end": "2 day"}},
     "treatment: treatment must end after it starts"),
    (InflammationConfig, {"treatment": {"neutrophil_reduction": 1.5}},
     "treatment.neutrophil_reduction: "),
    (InflammationConfig, {"lymphocytes": {}}, "lymphocytes: unknown key"),
]


def test_bad_inputs_are_refused_in_one_line():
    wrong = [(key, lines) for cls, data, key in BAD
             if len(lines := _lines(cls, **data)) != 1 or not lines[0].startswith(key)]
    assert not wrong


def test_table_course_and_duplicate_names():
    tl = InflammationConfig(neutrophils={"profile": "table", "table": [[0, 0.0], [1, 1.0],
                                                                       [7, 0.0]]})
    assert presence(0.5, tl, "neutrophils") == pytest.approx(0.5)
    assert presence(30.0, tl, "neutrophils") == 0.0
    assert enzyme_problems([MMP9, MMP9]) == ["enzymes[1].name: duplicate enzyme name 'MMP-9'"]
    assert enzyme_problems(default_enzymes()) == []
