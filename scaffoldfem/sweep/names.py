"""Names of sweeps and ids of cases: plain words, safe in paths and generated scripts.

A sweep's name and its case ids become directories under ``--out``, SLURM job
names and words of the generated shell scripts. Names and explicit ids are
checked against :data:`NAME_PATTERN` and refused otherwise (never silently
rewritten); generated ids are built only from safe characters.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pydantic_core import PydanticCustomError

from scaffoldfem.sweep.sampling import NUMBER_UNIT

__all__ = ["ID_PATTERN", "MAX_ID_LENGTH", "NAME_PATTERN", "case_id", "check_name", "short_names"]

#: Longest case id before it is shortened with a hash (file-system friendly).
MAX_ID_LENGTH = 80
#: What a sweep name or an explicit case ``id`` may be: it becomes a directory,
#: a SLURM job name and a word of generated shell scripts, so nothing that a
#: shell, a path or ``#SBATCH`` could read as more than a plain word.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: What every case id must be (generated ids also hold ``+``, from ``1e+05``).
ID_PATTERN = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._+-]{{0,{MAX_ID_LENGTH - 1}}}$")


def check_name(value: str, what: str) -> str:
    """``value`` if it matches :data:`NAME_PATTERN`, else a validation error naming
    ``what`` and showing the value."""
    if not NAME_PATTERN.match(value):
        raise PydanticCustomError(
            "sweep_name", "{what} must be 1-64 letters, digits, '.', '_' or '-', starting "
            "with a letter or digit (got {got})", {"what": what, "got": repr(value)})
    return value


def short_names(keys: list[str]) -> dict[str, str]:
    """Shortest unique dotted suffix of each key, joined with '_' (for case ids)."""
    out = {}
    for key in keys:
        parts = key.split(".")
        for n in range(1, len(parts) + 1):
            suffix = parts[-n:]
            if sum(1 for k in keys if k.split(".")[-n:] == suffix) == 1:
                break
        out[key] = "_".join(suffix)
    return out


def _slug(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.4g}"
    s = str(value)
    m = NUMBER_UNIT.match(s)
    if m and m.group(2):  # "16.44342 kPa" → "16.44kPa"
        s = f"{float(m.group(1)):.4g}{m.group(2)}"
    s = s.replace("**", "").replace("^", "").replace("/", "per")
    return re.sub(r"[^A-Za-z0-9.+-]", "", s)


def case_id(index: int, width: int, items: dict[str, Any], short: dict[str, str],
            label: str | None = None) -> str:
    """Human-readable, file-system safe id, e.g. ``c003-porosity0.7-solid_modulus10kPa``.

    Args:
        index: Position of the case in the sweep (makes ids unique).
        width: Digits of the index.
        items: The case's varied values.
        short: Short names of the keys.
        label: Explicit name of a ``[[cases]]`` entry, used instead of the values.
    """
    head = f"c{index:0{width}d}"
    if label is not None:
        body = label
    else:
        body = "-".join(f"{short.get(k, k)}{_slug(v)}" for k, v in items.items())
    # Keys may be any quoted TOML string: only safe characters reach the id.
    body = re.sub(r"[^A-Za-z0-9._+-]", "", body)
    cid = f"{head}-{body}" if body else head
    if len(cid) > MAX_ID_LENGTH:
        digest = hashlib.sha1(cid.encode()).hexdigest()[:8]
        cid = f"{cid[:MAX_ID_LENGTH - 9]}-{digest}"
    assert ID_PATTERN.match(cid), cid  # by construction
    return cid
