"""``scaffoldfem report DIR``: one self-contained page, ``DIR/report.html``, for a run or a sweep.

The page embeds the figures already drawn (``figures/*.png`` as data URIs), its CSS
and its one small script, and refers to nothing on the network, so the file alone
can be opened, mailed or archived. A run directory (``study.resolved.toml``) gets
:func:`scaffoldfem.viz.report_run.run_page`; a sweep directory (``sweep.json``)
:func:`scaffoldfem.viz.report_sweep.sweep_page`. Call on one rank.
"""

from __future__ import annotations

from pathlib import Path

from scaffoldfem.errors import RunDirError
from scaffoldfem.files import atomic_write_text
from scaffoldfem.viz.report_run import run_page
from scaffoldfem.viz.report_sweep import sweep_page

#: The page's file name in the directory.
REPORT = "report.html"


def report_kind(directory: Path) -> str:
    """``"sweep"`` or ``"run"``: what ``directory`` holds.

    Raises:
        RunDirError: ``directory`` does not exist or is neither (exit 2).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise RunDirError(f"{directory}: no such directory")
    if (directory / "sweep.json").is_file():
        return "sweep"
    if (directory / "study.resolved.toml").is_file():
        return "run"
    raise RunDirError(f"{directory} is neither a run (no study.resolved.toml) nor a sweep "
                      "(no sweep.json) directory; nothing to report")


def render_report(directory: Path) -> str:
    """The HTML of the report page of a run or sweep directory."""
    directory = Path(directory)
    if report_kind(directory) == "sweep":
        return sweep_page(directory)
    return run_page(directory)


def write_report(directory: str | Path) -> Path:
    """Write ``directory/report.html`` (through a temporary file and a rename).

    Args:
        directory: A run directory (``scaffoldfem run --out``) or a sweep directory
            (``scaffoldfem sweep --out``), finished or not.

    Returns:
        The page written.

    Raises:
        RunDirError: ``directory`` is neither a run nor a sweep directory.
    """
    directory = Path(directory)
    text = render_report(directory)
    path = directory / REPORT
    atomic_write_text(path, text)
    return path


def report_after(directory: str | Path) -> Path | None:
    """:func:`write_report` at the end of ``run`` or ``sweep`` (rank 0, after ``DONE``
    and the final tables): a page that cannot be written is a warning, never the
    failure of a finished run or sweep."""
    try:
        return write_report(directory)
    except Exception as err:  # the results are all on disk; the page can be redone
        print(f"warning: {REPORT} not written: {type(err).__name__}: {err} (retry with "
              f"'scaffoldfem report {directory}')", flush=True)
        return None
