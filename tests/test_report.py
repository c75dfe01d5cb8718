"""``scaffoldfem report DIR``: the self-contained report page of a run and of a sweep.

The HTML is checked as text (every metric of metrics.json present, every figure
embedded exactly once, nothing fetched from the network, the warnings a reader
needs) and in a real browser: headless Chromium renders each page to a screenshot
that must not be blank, logs no console message, and runs the page's script. The
browser tests skip, saying why, where Chromium is absent (.ci/run installs it).
A real tiny run (1 day, 8 axons, figures on) is made once, in the serial pass.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, clean_env, cli_in_process, serial_only
from PIL import Image
from test_sweep import fake_runner

from scaffoldfem.errors import RunDirError
from scaffoldfem.sweep.plan import load_sweep
from scaffoldfem.sweep.runner import run_sweep
from scaffoldfem.viz.report_page import REPORT, report_after, write_report
from scaffoldfem.viz.report_run import BALANCE_BOUND, flatten
from scaffoldfem.viz.sweep_plots import plot_sweep
from tests.test_api import TINY as API_TINY

BASELINE = ROOT / "studies" / "baseline.toml"
#: A run of the tiny geometry: 1 day, 8 axons (too few: the report must say so), figures on.
TINY = {**API_TINY, "output.figures": True}
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))
                 if p), None)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="headless Chromium is not installed (Debian: apt-get install "
    "chromium; .ci/run installs it): the report is not checked in a browser here")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A finished tiny run with its figures and its report (serial pass only)."""
    from mpi4py import MPI

    from scaffoldfem.api import Study, run

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("the real run is made in the serial pass")
    out = tmp_path_factory.mktemp("report") / "run"
    run(Study.default(TINY), out, MPI.COMM_SELF, quiet=True)
    write_report(out)
    return out


def _sweep(tmp: Path, text: str, name: str, comm, fail: int | None = None,
           monkeypatch=None) -> Path:
    """A sweep run with test_sweep's fake runner (case ``fail`` raises)."""
    path = tmp / f"{name}.toml"
    if comm.rank == 0:
        path.write_text(f'base = "{BASELINE}"\n[set]\n"output.figures" = false\n' + text)
    comm.barrier()
    plan = load_sweep(path)
    if fail is not None:
        monkeypatch.setenv("FAKE_FAIL_IDS", plan.cases[fail].id)
    out = tmp / name
    run_sweep(plan, out, comm, runner=fake_runner, quiet=True)
    return out


@pytest.fixture
def shared(comm, tmp_path):
    return Path(comm.bcast(str(tmp_path), root=0))


# ---------------------------------------------------------------------------
# The run's page as text


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def assert_offline(text: str) -> None:
    """No address on the network, and every image and link is inside the page."""
    assert not re.search(r"https?:|//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert all(s.startswith("data:image/") for s in re.findall(r'src="([^"]*)"', text))
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', text))


@serial_only
def test_run_report_holds_every_metric_and_each_figure_once(run_dir):
    text = (run_dir / REPORT).read_text()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    keys = [k for k, _ in flatten(metrics)]
    assert len(keys) > 100
    missing = [k for k in keys if f">{k}<" not in text]
    assert not missing, missing[:10]
    figures = sorted((run_dir / "figures").glob("*.png")) + sorted(
        (run_dir / "figures").glob("*.gif"))
    assert {p.name for p in figures} >= {"timecourses.png", "cutaway.png", "axons_crossing.png"}
    for p in figures:
        assert text.count(_b64(p)) == 1, p.name
    assert text.count("<img ") == len(figures)
    assert_offline(text)
    # Units and intervals of the headline metrics; provenance.
    assert re.search(r"lesion_auc_ng_day_per_mL</td><td[^>]*>[^<]+</td><td>ng·day/mL<", text)
    ci = metrics["axons"]["crossing_ci95"]
    assert f"{100 * ci[0]:.1f} – {100 * ci[1]:.1f} %" in text
    prov = json.loads((run_dir / "provenance.json").read_text())
    for value in (prov["study_sha256"], prov["mesh_sha256"], prov["versions"]["dolfinx"]):
        assert value in text


@serial_only
def test_run_report_warns_what_metrics_json_flags(run_dir, tmp_path):
    text = (run_dir / REPORT).read_text()
    assert "Warnings (" in text and "from only 8 axons" in text  # ±5-point rule
    assert "starts after the run&#x27;s end" in text  # evaluation window 14–56 day, run 1 day
    assert "mass-balance error" not in text
    # The same run with a broken mass balance and no DONE (a copy of its small files).
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("study.resolved.toml", "metrics.json", "provenance.json", "run.json"):
        shutil.copy(run_dir / name, copy / name)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["species"]["BDNF"]["mass_balance_rel_error"] = 1e3 * BALANCE_BOUND
    (copy / "metrics.json").write_text(json.dumps(metrics))
    text = (write_report(copy)).read_text()
    assert "BDNF: mass-balance error 1.00e-03 above 1e-06" in text
    assert "The run is incomplete (no DONE)" in text and "No time-course figure" in text


def test_balance_bound_is_the_run_s():
    from scaffoldfem.run.metrics import BALANCE_WARNING

    assert BALANCE_BOUND == BALANCE_WARNING


def test_neither_run_nor_sweep_is_refused(tmp_path, capsys):
    with pytest.raises(RunDirError, match="neither a run"):
        write_report(tmp_path)
    with pytest.raises(RunDirError, match="no such directory"):
        write_report(tmp_path / "nope")
    # At the end of a run or sweep the same is a warning: the results are on disk.
    assert report_after(tmp_path) is None
    assert "warning: report.html not written: RunDirError" in capsys.readouterr().out
    assert not (tmp_path / REPORT).exists()


# ---------------------------------------------------------------------------
# The sweep's page


def test_sweep_report_table_failures_plots(comm, shared, monkeypatch):
    out = _sweep(shared, '[grid]\n"scaffold.porosity" = [0.7, 0.8]\n'
                 '"scaffold.solid_modulus" = ["10 kPa", "100 kPa"]\n', "grid", comm, fail=3,
                 monkeypatch=monkeypatch)
    if comm.rank != 0:
        return
    plot_sweep(out)
    text = write_report(out).read_text()
    ids = [c["id"] for c in json.loads((out / "sweep.json").read_text())["cases"]]
    assert all(f">{i}<" in text for i in ids) and 'class="sortable"' in text
    assert "Failed cases (1)" in text and "fake divergence" in text
    assert text.count(_b64(out / "figures" / "sweep_overview.png")) == 1
    assert "sweep_axons_crossing_fraction.png" not in text  # in the overview: not twice
    assert "need a Saltelli design" in text
    assert_offline(text)


@pytest.fixture(scope="module")
def saltelli_sweep(tmp_path_factory) -> Path:
    """A finished Saltelli sweep (16 cases, fake runner), read by the page test and
    (on a copy) by the browser test: one sweep for both."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    tmp = Path(comm.bcast(str(tmp_path_factory.mktemp("salt")), root=0))
    return _sweep(tmp, '[sample]\nmethod = "saltelli"\nn = 16\nseed = 1\n[sample.ranges]\n'
                  '"scaffold.porosity" = [0.6, 0.95]\n"scaffold.hydrolysis_rate" = '
                  '{ low = "0.01 1/day", high = "0.1 1/day" }\n', "salt", comm)


def test_saltelli_sweep_report_draws_the_indices(comm, saltelli_sweep):
    out = saltelli_sweep
    if comm.rank != 0:
        return
    assert (out / "sensitivity.csv").is_file()  # written at the end of the sweep
    text = write_report(out).read_text()
    png = out / "figures" / "sweep_sensitivity.png"
    assert text.count(_b64(png)) == 1 and "Which parameters matter" in text
    assert ">scaffold.mass_remaining_fraction<" in text and ">ST_conf<" in text
    assert_offline(text)


def test_cli_report(shared, comm):
    """``scaffoldfem report`` in this process (it needs no process of its own): on one
    rank in the serial pass and on two in the MPI pass, where rank 0 alone says it."""
    out = _sweep(shared, '[grid]\n"scaffold.porosity" = [0.7, 0.8]\n', "cli", comm)
    res = cli_in_process("report", str(out))
    assert res.returncode == 0, res.stderr
    assert comm.allreduce(res.stdout.count("wrote ")) == 1 and (out / REPORT).is_file()
    bad = cli_in_process("report", str(shared))
    assert bad.returncode == 2
    assert ("neither a run" in bad.stderr) == (comm.rank == 0)  # said once, by rank 0
    assert "Traceback" not in bad.stderr


# ---------------------------------------------------------------------------
# In a real browser


def render(page: Path, tmp: Path, fragment: str = "") -> tuple[np.ndarray, list[str], str]:
    """Headless Chromium on ``page``: the screenshot (grey levels), the console
    messages it logged, and the DOM after the scripts ran (``page#fragment``)."""
    base = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={tmp / 'profile'}",
            "--host-resolver-rules=MAP * ~NOTFOUND",  # nothing may come from the network
            "--enable-logging=stderr", "--v=0", "--window-size=1200,2000"]
    shot = tmp / f"{page.stem}.png"
    uri = page.resolve().as_uri() + fragment
    # One browser for both (~2.5 s a start): a Chromium that cannot screenshot and dump
    # the DOM in one run (older headless modes) is asked twice, as before.
    res = subprocess.run([*base, f"--screenshot={shot}", "--dump-dom", uri],
                         capture_output=True, text=True, timeout=180, env=clean_env())
    dom = res
    if not shot.is_file() or "<html" not in res.stdout:
        shot.unlink(missing_ok=True)
        res = subprocess.run([*base, f"--screenshot={shot}", uri], capture_output=True,
                             text=True, timeout=180, env=clean_env())
        dom = subprocess.run([*base, "--dump-dom", uri], capture_output=True, text=True,
                             timeout=180, env=clean_env())
    assert shot.is_file(), res.stderr[-2000:]
    logs = res.stderr + (dom.stderr if dom is not res else "")
    console = [line for line in logs.splitlines() if ":CONSOLE" in line]
    return np.asarray(Image.open(shot).convert("L"), dtype=float), console, dom.stdout


def column_values(page: str, col: int) -> list[float]:
    """The numbers (``data-v``) in column ``col`` of the first sortable table of ``page``."""
    body = re.search(r'<table class="sortable">.*?<tbody>(.*?)</tbody>', page, re.S).group(1)
    cells = [re.findall(r"<td([^>]*)>", row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    return [float(re.search(r'data-v="([^"]*)"', c[col]).group(1)) for c in cells]


def assert_rendered(pixels: np.ndarray, console: list[str], dom: str) -> None:
    assert pixels.shape == (2000, 1200)
    assert pixels.std() > 20 and (pixels < 200).mean() > 0.02  # text, tables, pictures
    assert not console, console
    assert 'data-report-js="ready"' in dom


@serial_only
@needs_chromium
def test_run_report_in_headless_chromium(run_dir, tmp_path):
    assert_rendered(*render(run_dir / REPORT, tmp_path))


@serial_only
@needs_chromium
def test_sweep_report_in_headless_chromium(saltelli_sweep, tmp_path):
    out = shutil.copytree(saltelli_sweep, tmp_path / "browser")  # its own figures and page
    plot_sweep(out)
    page = write_report(out)
    text = page.read_text()
    head = re.search(r'<table class="sortable"><thead><tr>(.*?)</tr>', text).group(1)
    col = re.findall(r"<th>(.*?)</th>", head).index("axons.crossing_fraction")
    pixels, console, dom = render(page, tmp_path, f"#sort={col}-")
    assert_rendered(pixels, console, dom)
    # The page's script sorted the cases table by crossing fraction, descending;
    # the file itself holds the cases in sweep order.
    values = column_values(dom, col)
    assert len(values) == 16 and values == sorted(values, reverse=True)
    assert column_values(text, col) != values


@serial_only
@needs_chromium
def test_the_browser_check_sees_a_blank_page_and_a_script_error(tmp_path):
    """The checks above can fail: a blank page with a failing script is caught."""
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script>"
                    "</body></html>")
    pixels, console, dom = render(page, tmp_path)
    assert pixels.std() < 1 and (pixels < 200).mean() == 0
    assert any("undefinedFunction" in line for line in console), console
    assert 'data-report-js="ready"' not in dom
