"""What a run directory holds: the identity recorded when the run starts, and the
comparison that lets ``--resume`` continue only that same run.

``run.json`` is written first into every run directory scaffoldfem creates. It is
the marker that lets ``--overwrite`` delete the directory (see
:mod:`scaffoldfem.run.rundir`) and it records the study hash, the mesh hash (added
once the mesh is known) and the code version. ``--resume`` compares the study
with ``study.resolved.toml`` key by key and the mesh with the recorded hash; only
the keys of :data:`SAFE_ON_RESUME` (and :data:`EXTEND_ON_RESUME`, when they grow)
may differ. No DOLFINx here: the CLI checks a run directory before loading it.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import scaffoldfem
from scaffoldfem.config.study import Study
from scaffoldfem.run import provenance as prov

#: The marker and identity of a run directory.
RUN_FILE = "run.json"
#: The resolved study of a run (every default filled in).
STUDY_FILE = "study.resolved.toml"
#: ``written_by`` of every marker scaffoldfem writes.
WRITTEN_BY = "scaffoldfem"
#: Keys that may change between the start of a run and a ``--resume``: they decide
#: what is written and when, not what is computed up to the checkpoint.
SAFE_ON_RESUME = frozenset(
    {"description", "output.interval", "output.checkpoint_interval", "output.figures"}
)
#: Keys that may only grow on resume (the run then continues to the new end).
EXTEND_ON_RESUME = frozenset({"time.duration"})
#: At most this many differing keys are named in the one-line refusal.
MAX_NAMED = 8


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a study dict: list elements that all carry a distinct ``name``
    by name, others by index: the keys of ``--set`` (``species.BDNF.half_life``,
    ``species.NT3.doses.0.rate``)."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        names = [v.get("name") for v in obj]
        by_name = all(isinstance(n, str) for n in names) and len(set(names)) == len(names)
        out = {}
        for i, value in enumerate(obj):
            out.update(flatten(value, f"{prefix}.{names[i] if by_name else i}"))
        return out
    return {prefix: obj}


def _magnitude(value: Any) -> float | None:
    """The number of a quantity string such as ``"3.0 day"`` (None if it is none)."""
    try:
        return float(str(value).split()[0])
    except (ValueError, IndexError):
        return None


def study_differences(old: dict[str, Any], new: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Keys where the resolved study ``new`` differs from the run's ``old``.

    Returns:
        ``(refused, allowed)``: keys that forbid a resume, and keys that changed but
        are safe (:data:`SAFE_ON_RESUME`, :data:`EXTEND_ON_RESUME` grown), sorted.
    """
    a, b = flatten(old), flatten(new)
    refused, allowed = [], []
    for key in sorted(a.keys() | b.keys()):
        if a.get(key) == b.get(key):
            continue
        if key in SAFE_ON_RESUME:
            allowed.append(key)
        elif key in EXTEND_ON_RESUME and (_magnitude(b.get(key)) or 0.0) >= (
            _magnitude(a.get(key)) or float("inf")
        ):
            allowed.append(key)
        else:
            refused.append(key)
    return refused, allowed


def name_keys(keys: list[str]) -> str:
    """``a, b, c`` (the first :data:`MAX_NAMED`, then how many more)."""
    shown = ", ".join(keys[:MAX_NAMED])
    return shown + (f" and {len(keys) - MAX_NAMED} more" if len(keys) > MAX_NAMED else "")


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None if it is missing or not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_identity(out: Path) -> dict[str, Any] | None:
    """The recorded identity of the run in ``out`` (None for runs of older versions)."""
    data = read_json(Path(out) / RUN_FILE)
    return data if data is not None and data.get("written_by") == WRITTEN_BY else None


def read_resolved(out: Path) -> dict[str, Any] | None:
    """The run's ``study.resolved.toml`` as a dict (None if missing or unreadable)."""
    try:
        return tomllib.loads((Path(out) / STUDY_FILE).read_text())
    except (OSError, ValueError):
        return None


def new_identity(study: Study | None) -> dict[str, Any]:
    """The identity of a run starting now (the mesh hash comes later)."""
    return {
        "written_by": WRITTEN_BY,
        "kind": "run",
        "scaffoldfem": scaffoldfem.__version__,
        "git_commit": prov.git_commit(),
        "created": prov.now(),
        "study_sha256": study.digest() if study is not None else None,
        "mesh_file": None,
        "mesh_sha256": None,
        "resumes": [],
    }


def code_change(identity: dict[str, Any] | None) -> str | None:
    """A warning if the run was started by another scaffoldfem version or commit."""
    if identity is None:
        return None
    was = (identity.get("scaffoldfem"), identity.get("git_commit"))
    now = (scaffoldfem.__version__, prov.git_commit())
    # An unknown commit (not a git checkout) is no change when the versions agree.
    if was == now or (None in (was[1], now[1]) and was[0] == now[0]):
        return None
    return (f"warning: this run was started by scaffoldfem {_code(*was)}; "
            f"continuing with {_code(*now)}")


def _code(version: Any, commit: Any) -> str:
    return f"{version}" + (f" (commit {str(commit)[:10]})" if commit else "")
