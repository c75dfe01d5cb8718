"""Every script in examples/ runs as a user runs it: ``python examples/NAME.py OUT_DIR``.

Each example takes its output directory as its one argument and draws at least one
PNG there; examples with known results are checked further (:data:`CHECKS`).
Subprocesses: serial pass only.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import ROOT, clean_env, serial_only

from scaffoldfem.api import Results

EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def check_python_api(out: Path, stdout: str) -> None:
    png = out / "lesion_timecourse.png"
    img = iio.imread(png)[..., :3].astype(int)
    assert img.shape[0] > 300 and img.shape[1] > 500 and img.std() > 20  # drawn, not blank
    # The BDNF line (Okabe-Ito blue) is on it.
    assert np.sum(np.all(np.abs(img - [0, 114, 178]) < 30, axis=-1)) > 200
    res = Results(out / "run")
    assert res.done
    assert res.study.geometry.resolution == "0.4 mm" and res.study.time.duration == 14.0
    m = res.metrics
    for name, sp in m["species"].items():
        assert sp["mass_balance_rel_error"] < 1e-8, name
    assert m["species"]["BDNF"]["lesion_auc_ng_day_per_mL"] > 0
    assert 0 < m["scaffold"]["mass_remaining_fraction"] < 1
    assert m["axons"]["seeded"] == 30 and len(res.axons) == 30
    assert 0 <= m["axons"]["crossing_fraction"] <= 1
    assert list(res.timeseries["t_day"]) == pytest.approx(range(15))
    assert f"wrote {png}" in stdout and "mass balance error" in stdout


#: Further checks by example name: ``check(out_dir, stdout)``.
CHECKS: dict[str, Callable[[Path, str], None]] = {"python_api": check_python_api}


def test_every_example_has_a_check():
    assert EXAMPLES, "no examples/*.py"
    assert {p.stem for p in EXAMPLES} == set(CHECKS)


@serial_only
@pytest.mark.parametrize("script", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs(script, tmp_path):
    out = tmp_path / "out"
    # From another directory: an example may rely on nothing but its argument.
    r = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                       cwd=tmp_path, env=clean_env(), timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert list(out.glob("*.png")), f"{script.name} drew no PNG into {out}"
    CHECKS[script.stem](out, r.stdout)
