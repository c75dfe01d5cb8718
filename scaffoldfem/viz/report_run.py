"""The report page of a run directory: what was run, what came out, how far to trust it.

Reads only the run's files (``study.resolved.toml``, ``metrics.json``,
``provenance.json``, ``run.json``, ``timeseries.csv``, ``figures/``); the figures
are embedded as they are (``scaffoldfem plot`` draws them; nothing is drawn twice).
Sections: summary and key settings, warnings, headline metrics with units and
intervals, time courses, axon outcomes, pictures, every metric, provenance.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from scaffoldfem.axons.crossing import WARN_HALF_WIDTH
from scaffoldfem.files import read_json_object
from scaffoldfem.viz import report_html as h

#: The bound on a species' relative mass-balance error above which the run warns;
#: the same value as ``scaffoldfem.run.metrics.BALANCE_WARNING`` (not imported: that
#: module loads DOLFINx; tests/test_report.py checks the two agree).
BALANCE_BOUND = 1e-6
#: Figures by section, in order (others found in ``figures/`` go to "Pictures").
TIME_FIGURES = {"timecourses.png": "Time courses: injury, growth factors in the lesion, "
                "scaffold, axons crossed"}
AXON_FIGURES = {"axons_crossing.png": "Crossing curve: fraction of axons past each depth "
                "beyond the far lesion face, with its 95 % Wilson interval"}
PICTURES = {
    "cutaway.png": "Growth factor on the mid-sagittal plane and axons by final state",
    "cross_sections.png": "Cross sections through the lesion",
    "host_maps.png": "The host's answer on the midline: CSPG, ingrowth, cavitation",
    "growth.gif": "Growth over time (animation)",
}
#: Key unit suffixes of metrics.json and the unit shown (longest first).
UNITS = (
    ("_ng_day_per_mL", "ng·day/mL"), ("_mm3_day", "mm³·day"), ("_mm_per_day", "mm/day"),
    ("_ng_per_mL", "ng/mL"), ("_ng_per_cell_per_day", "ng/cell/day"), ("_mm3", "mm³"),
    ("_kPa", "kPa"), ("_day", "day"), ("_mm", "mm"), ("_ng", "ng"), ("_mb", "MB"),
    ("_s", "s"),
)


def unit_of(key: str) -> str:
    """The unit of a metric from the suffix of its key or of the section it is in
    (``lesion_auc_ng_day_per_mL`` → ng·day/mL, ``timing_s.solve`` → s)."""
    for part in reversed(key.split(".")):
        for suffix, unit in UNITS:
            if part.endswith(suffix):
                return unit
    return ""


def flatten(tree: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of ``metrics.json`` as (dotted key, value); lists are leaves."""
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from flatten(v, f"{prefix}.{k}" if prefix else str(k))
    else:
        yield prefix, tree


def _get(tree: Any, key: str, default: Any = None) -> Any:
    for part in key.split("."):
        if not isinstance(tree, dict) or part not in tree:
            return default
        tree = tree[part]
    return tree


# -- warnings --------------------------------------------------------------------------


def run_warnings(metrics: dict[str, Any], done: bool) -> list[str]:
    """What a reader should know before trusting the numbers, from what the run wrote."""
    out = [] if done else ["The run is incomplete (no DONE): the files are those written so far."]
    if not metrics:
        return [*out, "No metrics.json: the run did not reach its end."]
    axons = metrics.get("axons") or {}
    out += [str(w).removeprefix("warning: ") for w in axons.get("warnings") or []]
    ci = axons.get("crossing_ci95")
    if not axons.get("warnings") and isinstance(ci, list) and len(ci) == 2 \
            and all(h.is_number(c) for c in ci) and (ci[1] - ci[0]) / 2 > WARN_HALF_WIDTH:
        out.append(f"crossing fraction interval ±{50 * (ci[1] - ci[0]):.1f} points is wider "
                   f"than ±{100 * WARN_HALF_WIDTH:g}: seed more axons (axons.count)")
    seeded, states = axons.get("seeded"), axons.get("states") or {}
    if h.is_number(seeded) and seeded and h.is_number(states.get("growing")) \
            and states["growing"] / seeded > 0.5:
        out.append(f"{states['growing']} of {seeded} axons were still growing at the end: "
                   "the run may be too short for the crossing fraction to settle")
    for name, sp in (metrics.get("species") or {}).items():
        err = sp.get("mass_balance_rel_error") if isinstance(sp, dict) else None
        if h.is_number(err) and err > BALANCE_BOUND:
            out.append(f"{name}: mass-balance error {err:.2e} above {BALANCE_BOUND:g} (a bug, "
                       "not physics: report it)")
    if h.is_number(_get(metrics, "mechanics.max_interface_strain_jump")):
        out.append("mechanics.max_interface_strain_jump sits on a singular corner and does "
                   "not settle under mesh refinement (not converged): read the p95 instead")
    if _get(metrics, "pain_risk.calibrated") is False:
        out.append("pain_risk.score is a relative, uncalibrated index: compare runs, do not "
                   "read it as a probability")
    duration = _get(metrics, "time.duration_day")
    window = next((v for k, v in flatten(metrics) if k.endswith("window_day")
                   and isinstance(v, list) and len(v) == 2), None)
    if h.is_number(duration) and window and h.is_number(window[0]) and window[0] >= duration:
        out.append(f"the evaluation window {window[0]:g}–{window[1]:g} day starts after the "
                   f"run's end ({duration:g} day): every evaluation-window metric is zero")
    return out


# -- sections ---------------------------------------------------------------------------


def _settings(study: dict[str, Any]) -> list[tuple[str, Any]]:
    """Key settings of the study as (label, value)."""
    rows = [(k, _get(study, k)) for k in (
        "geometry.resolution", "geometry.cord.length", "geometry.lesion.kind",
        "geometry.lesion.length", "geometry.channels.count", "geometry.channels.diameter",
        "scaffold.preset", "scaffold.porosity", "scaffold.solid_modulus",
        "scaffold.hydrolysis_rate", "scaffold.pore_size", "time.duration", "time.dt",
        "axons.count", "mechanics.enabled", "ingrowth.enabled")]
    for sp in study.get("species") or []:
        carriers = ", ".join(f"{c.get('preset') or c.get('law')} {c.get('loading', '')}".strip()
                             for c in sp.get("carriers") or [])
        doses = len(sp.get("doses") or [])
        rows.append((f"species {sp.get('name')}",
                     f"carriers: {carriers or 'none'}; doses: {doses}; half-life "
                     f"{h.quantity(sp.get('half_life'))}"))
    for co in _get(study, "cells.cohorts", []) or []:
        rows.append((f"graft cohort {co.get('name')}",
                     f"{co.get('cell_type', '')} at {co.get('transplant_time', '')} in "
                     f"{', '.join(co.get('regions') or [])}"))
    return [(k, h.quantity(v)) for k, v in rows if v is not None]


def summary_section(run_dir: Path, study: dict[str, Any], metrics: dict[str, Any]) -> str:
    """Study name, description, the answer in one line, the key settings."""
    axons = metrics.get("axons") or {}
    lines = []
    if h.is_number(axons.get("crossing_fraction")):
        lines.append(f'<p class="big">Axons crossed: '
                     f'{h.esc(h.pct_ci(axons["crossing_fraction"], axons.get("crossing_ci95")))}'
                     f" of {h.esc(h.num(axons.get('seeded')))} by day "
                     f"{h.esc(h.num(_get(metrics, 'time.duration_day')))}</p>")
    desc = study.get("description") or "(no description)"
    body = (f"<p><b>Study</b> <code>{h.esc(study.get('name', '?'))}</code> — {h.esc(desc)}</p>"
            f"<p>Run directory <code>{h.esc(run_dir)}</code></p>{''.join(lines)}"
            + h.table(["setting", "value"], _settings(study)))
    return h.section("summary", "Study", body)


def _interval(v: Any) -> str:
    if isinstance(v, list) and len(v) == 2 and all(h.is_number(x) for x in v):
        return f"{h.num(v[0])} – {h.num(v[1])}"
    return ""


def headline_rows(metrics: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, value, unit, 95 % interval) of the headline metrics."""
    rows: list[tuple[str, str, str, str]] = []
    ax = metrics.get("axons") or {}

    def add(key: str, value: Any, unit: str = "", ci: Any = None, as_pct: bool = False) -> None:
        if value is None and ci is None:
            return
        shown = h.pct(value) if as_pct else h.num(value)
        iv = (f"{100 * ci[0]:.1f} – {100 * ci[1]:.1f} %" if as_pct and _interval(ci)
              else _interval(ci))
        rows.append((key, shown, "" if as_pct else unit, iv))

    add("axons.crossing_fraction", ax.get("crossing_fraction"), ci=ax.get("crossing_ci95"),
        as_pct=True)
    for pop, p in (ax.get("populations") or {}).items():
        base = f"axons.populations.{pop}"
        add(f"{base}.crossing_fraction", p.get("crossing_fraction"), ci=p.get("crossing_ci95"),
            as_pct=True)
        add(f"{base}.median_time_to_cross_day", p.get("median_time_to_cross_day"), "day",
            p.get("time_to_cross_ci95_day"))
        fates = p.get("fates") or {}
        add(f"{base}.fates.turned_back_fraction", fates.get("turned_back_fraction"),
            ci=fates.get("turned_back_ci95"), as_pct=True)
    for name, sp in (metrics.get("species") or {}).items():
        for k in ("lesion_auc_ng_day_per_mL", "peak_lesion_mean_ng_per_mL", "time_in_window_day",
                  "grey_matter_auc_ng_day_per_mL", "mass_balance_rel_error"):
            if k in sp:
                add(f"species.{name}.{k}", sp[k], unit_of(k))
        win = sp.get("evaluation_window") or {}
        for k in ("lesion_auc_ng_day_per_mL", "mean_occupancy_lesion",
                  "mean_occupancy_dorsal_horn"):
            if k in win:
                add(f"species.{name}.evaluation_window.{k}", win[k], unit_of(k))
    for key in ("pain_risk.score", "pain_risk.kcc2_index_final", "scaffold.mass_remaining_fraction",
                "scaffold.porosity_mean_final", "scaffold.modulus_mean_final_kPa",
                "scaffold.ingrowth.cavitation_fraction_max",
                "scaffold.ingrowth.filled_fraction_final", "mechanics.interface_strain_jump.mean",
                "mechanics.interface_strain_jump.p95", "cspg.cspg_mean_scar"):
        v = _get(metrics, key)
        if v is not None:
            add(key, v, unit_of(key))
    for name, co in (metrics.get("cells") or {}).items():
        if isinstance(co, dict) and "surviving_fraction_final" in co:
            add(f"cells.{name}.surviving_fraction_final", co["surviving_fraction_final"],
                as_pct=True)
    return rows


def metrics_section(metrics: dict[str, Any]) -> str:
    """Headline metrics with units and intervals, then every metric by section."""
    body = h.table(["metric", "value", "unit", "95 % interval"], headline_rows(metrics))
    for name, sub in metrics.items():
        rows = []
        for key, v in flatten(sub, name):
            shown = h.num(v)
            if isinstance(v, list) and len(v) > 12:  # a curve: its range (the figure shows it)
                nums = [x for x in v if h.is_number(x)]
                shown = f"{len(v)} values" + (f", {h.num(min(nums))} … {h.num(max(nums))}"
                                              if nums else "")
            rows.append((key, shown, unit_of(key)))
        body += h.details(f"every metric: {name} ({len(rows)})",
                          h.table(["metric", "value", "unit"], rows))
    return h.section("metrics", "Metrics", body)


def axons_section(run_dir: Path, metrics: dict[str, Any]) -> str:
    """Per population: seeded, crossed (with interval), how the axons ended, mid-scaffold
    channel occupancy, alignment in channels; the graft; the crossing curve."""
    ax = metrics.get("axons") or {}
    if not ax:
        return h.section("axons", "Axon outcomes", "<p>No axons were traced in this run.</p>")
    rows = []
    for pop, p in (ax.get("populations") or {}).items():
        f = p.get("fates") or {}
        mid = p.get("mid_scaffold") or {}
        ch = p.get("in_channels") or {}
        rows.append((pop, p.get("seeded"), p.get("crossed"),
                     h.pct_ci(p.get("crossing_fraction"), p.get("crossing_ci95")),
                     f.get("growing"), f.get("stalled"), f.get("exited_far_end"),
                     f.get("exited_near_end"),
                     h.pct_ci(f.get("turned_back_fraction"), f.get("turned_back_ci95")),
                     f"{mid.get('channel', '–')} / {mid.get('matrix', '–')}",
                     ch.get("alignment_cos"), ch.get("tortuosity")))
    body = h.table(["population", "seeded", "crossed", "crossing fraction", "growing", "stalled",
                    "exited far end", "exited near end", "turned back",
                    "mid-scaffold channel / matrix", "alignment |cos| in channels",
                    "tortuosity in channels"], rows)
    graft = [(k, ax[k]) for k in ("graft_entered", "graft_trapped", "graft_left_far") if k in ax]
    if graft:
        body += "<h3>Graft</h3>" + h.table(["axons", "count"], graft)
    for name, caption in AXON_FIGURES.items():
        if (run_dir / "figures" / name).is_file():
            body += h.figure(run_dir / "figures" / name, caption)
    return h.section("axons", "Axon outcomes", body)


def time_section(run_dir: Path) -> str:
    """The time-course figure and a short table of the lesion means."""
    body = ""
    for name, caption in TIME_FIGURES.items():
        if (run_dir / "figures" / name).is_file():
            body += h.figure(run_dir / "figures" / name, caption)
    if not body:
        body = ("<p>No time-course figure (the study has <code>output.figures = false</code>); "
                "<code>scaffoldfem plot DIR</code> draws it.</p>")
    body += _timeseries_table(run_dir / "timeseries.csv")
    return h.section("time", "Time courses", body)


def _timeseries_table(path: Path, max_rows: int = 15) -> str:
    try:
        df = pd.read_csv(path)
    except (OSError, ValueError):
        return ""
    cols = ["t_day", *[c for c in df.columns if c.startswith("lesion_mean_")],
            *[c for c in ("scaffold_mass_fraction", "axons_crossed") if c in df.columns]]
    cols = [c for c in cols if c in df.columns]
    step = max(1, math.ceil(len(df) / max_rows))
    sub = df[cols].iloc[::step]
    return h.details(f"timeseries.csv: {', '.join(cols)} ({len(df)} rows, every {step})",
                     h.table(cols, sub.itertuples(index=False)))


def pictures_section(run_dir: Path) -> str:
    """Every other figure of ``figures/``, each once."""
    fig_dir = run_dir / "figures"
    shown = set(TIME_FIGURES) | set(AXON_FIGURES)
    names = [n for n in PICTURES if (fig_dir / n).is_file()]
    names += sorted(p.name for p in fig_dir.glob("*") if p.suffix.lower() in h.MIME
                    and p.name not in shown and p.name not in PICTURES)
    if not names:
        return h.section("pictures", "Pictures", "<p>No pictures in figures/.</p>")
    return h.section("pictures", "Pictures",
                     "".join(h.figure(fig_dir / n, PICTURES.get(n, n)) for n in names))


def provenance_section(run_dir: Path) -> str:
    """Versions, commit, hashes, times, wall time per phase, peak memory."""
    prov = read_json_object(run_dir / "provenance.json")
    run = read_json_object(run_dir / "run.json")
    if not prov and not run:
        return h.section("provenance", "Provenance", "<p>No provenance.json.</p>")
    rows = [(f"version {k}", v) for k, v in (prov.get("versions") or {}).items()]
    for key in ("host", "mpi_size", "start", "end", "study_sha256", "mesh_file", "mesh_sha256",
                "resumed_segments"):
        if key in prov:
            rows.append((key, prov[key]))
    if run:
        rows += [(f"run.json {k}", v) for k, v in run.items() if k in ("created", "git_commit",
                                                                      "resumes")]
    mem = prov.get("peak_memory") or {}
    rows += [(f"peak memory {k}", f"{v:.0f} MB" if h.is_number(v) else v) for k, v in mem.items()]
    body = h.table(["", "value"], rows)
    timing = prov.get("timing_s") or {}
    if timing:
        body += "<h3>Wall time by phase</h3>" + h.table(
            ["phase", "seconds"], [(k, v) for k, v in timing.items()])
    return h.section("provenance", "Provenance", body)


def run_page(run_dir: Path) -> str:
    """The report page of a run directory."""
    try:
        study = tomllib.loads((run_dir / "study.resolved.toml").read_text())
    except (OSError, ValueError):
        study = {}
    metrics = read_json_object(run_dir / "metrics.json")
    done = (run_dir / "DONE").exists()
    warn = run_warnings(metrics, done)
    sections = [
        summary_section(run_dir, study, metrics),
        h.section("warnings", f"Warnings ({len(warn)})",
                  h.notes(warn) if warn else h.notes(["No warnings."], "ok")),
        metrics_section(metrics),
        time_section(run_dir),
        axons_section(run_dir, metrics),
        pictures_section(run_dir),
        provenance_section(run_dir),
    ]
    nav = [("summary", "Study"), ("warnings", "Warnings"), ("metrics", "Metrics"),
           ("time", "Time courses"), ("axons", "Axons"), ("pictures", "Pictures"),
           ("provenance", "Provenance")]
    status = "finished" if done else "incomplete"
    return h.page(f"scaffoldfem run: {study.get('name', run_dir.name)}",
                  f"{status} run, {run_dir}", nav, "".join(sections))
