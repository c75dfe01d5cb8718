"""``scaffoldfem sweep SWEEP.toml --slurm``: ready-to-submit SLURM scripts.

Two scripts are written into ``DIR/slurm/``:

* ``sweep.sbatch`` — one allocation of P = G·K tasks running the MPI sweep
  (``srun``/``mpiexec -n P scaffoldfem sweep ... --ranks-per-case K``). Resubmitting
  it resumes the sweep (cases with ``DONE`` are skipped).
* ``sweep_array.sbatch`` — a job array, one case per task (K ranks each), each
  task safe to rerun: a case with ``DONE`` is skipped, one with a run in
  progress is resumed (``--resume``). After its case every task rebuilds
  ``results.csv``/``.parquet`` under ``flock``, so there is one writer at a time.

Both run scaffoldfem from the venv it was generated with, or from an Apptainer
image when ``SCAFFOLDFEM_SIF`` is set at submission
(``sbatch --export=ALL,SCAFFOLDFEM_SIF=$PWD/scaffoldfem.sif ...``). With the image
the host MPI launches the ranks (hybrid model): the image's MPICH must be ABI
compatible with the host MPI (see docs/cluster.md).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from scaffoldfem.errors import RunDirError, StudyError
from scaffoldfem.files import atomic_write_text
from scaffoldfem.sweep.names import ID_PATTERN, NAME_PATTERN
from scaffoldfem.sweep.plan import SweepPlan

#: Default number of concurrent case groups in one allocation.
DEFAULT_GROUPS = 8
#: Default number of array tasks running at once (``--array=...%N``).
DEFAULT_ARRAY_PARALLEL = 32


#: Characters a path may hold on an ``#SBATCH`` line: sbatch splits those lines
#: itself and knows no shell quoting, so a space or quote would end the option.
_SBATCH_PATH = re.compile(r"^[A-Za-z0-9._/+,:@~=-]+$")
_TIME_LIMIT = re.compile(r"^[0-9]+(-[0-9]+)?(:[0-9]+){0,2}$")


def _q(p: str | Path) -> str:
    """Shell-quote a value (every value interpolated into a shell line goes through here)."""
    text = str(p)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        # Even quoted, a newline would put a line of its own into the script.
        raise RunDirError(f"{text!r}: a path or value with a newline or control character "
                          "cannot go into a SLURM script")
    return shlex.quote(text)


def check_out_path(out: Path) -> str:
    """``out`` as an ``#SBATCH`` word: refused (exit 2) if sbatch could misread it.

    Call before anything is written, so a refused path leaves nothing behind.
    """
    if not _SBATCH_PATH.match(str(out)):
        raise RunDirError(f"--out {str(out)!r}: the SLURM scripts log into it through #SBATCH "
                          "--output, which takes no spaces, quotes, control or shell "
                          "characters; choose a plainer path")
    return str(out)


def _check_inputs(plan: SweepPlan, ranks_per_case: int, groups: int, parallel: int,
                  time_limit: str) -> None:
    """Refuse what could make an unsafe or impossible script (exit 2, one line each)."""
    problems = []
    if ranks_per_case < 1:
        problems.append(f"--ranks-per-case: must be >= 1 (got {ranks_per_case})")
    if groups < 1:
        problems.append(f"groups: must be >= 1 (got {groups})")
    if parallel < 1:
        problems.append(f"parallel: must be >= 1 (got {parallel})")
    if not _TIME_LIMIT.match(time_limit):
        problems.append(f"time_limit: expected [D-]HH:MM:SS (got {time_limit!r})")
    if not NAME_PATTERN.match(plan.name):
        problems.append(f"name: not a plain word (got {plan.name!r})")
    problems += [f"{c.id!r}: not a plain case id" for c in plan.cases if not ID_PATTERN.match(c.id)]
    if not plan.cases:
        problems.append("the sweep has no cases")
    if problems:
        raise StudyError(problems)


def _venv_bin() -> Path:
    """Directory of the Python that runs us (holds ``scaffoldfem`` in a venv)."""
    return Path(sys.executable).parent


def _environment(venv_bin: Path, image: str | None, workdir: Path) -> str:
    """Shell prelude choosing venv or Apptainer, and the runtime environment."""
    default_image = _q(image) if image else '""'
    scaffoldfem = venv_bin / "scaffoldfem"
    # The venv's script, else the one on PATH, else this Python's module entry point.
    found = str(scaffoldfem) if scaffoldfem.exists() else shutil.which("scaffoldfem")
    sf = _q(found) if found else f"{_q(sys.executable)} -m scaffoldfem"
    return f"""set -euo pipefail
cd {_q(workdir)}

# One thread per MPI rank (BLAS/OpenMP threads would oversubscribe the cores).
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# FFCx/DOLFINx JIT cache on a shared file system: forms are compiled once for the
# whole sweep instead of once per case and node.
export XDG_CACHE_HOME="${{XDG_CACHE_HOME:-$HOME/.cache}}"
mkdir -p "$XDG_CACHE_HOME"

# How scaffoldfem is run: the venv below, or an Apptainer image when
# SCAFFOLDFEM_SIF is set (sbatch --export=ALL,SCAFFOLDFEM_SIF=/path/scaffoldfem.sif ...).
DEFAULT_SIF={default_image}
SCAFFOLDFEM_SIF="${{SCAFFOLDFEM_SIF:-$DEFAULT_SIF}}"
if [ -n "$SCAFFOLDFEM_SIF" ]; then
  # Hybrid MPI model: the host launcher starts one container per rank; the
  # image's MPICH must be ABI compatible with the host MPI (docs/cluster.md).
  # (Apptainer passes the environment, so the cache settings above hold inside.)
  SF=(apptainer exec --bind "$PWD" "$SCAFFOLDFEM_SIF" scaffoldfem)
else
  SF=({sf})
fi
# Launcher: srun by default (a rank that dies ends the whole step, never a hang); set
# SCAFFOLDFEM_LAUNCH="mpiexec -n" if your MPI is not built with Slurm's PMI support
# (mpiexec then takes the task count from Slurm).
read -r -a LAUNCH <<< "${{SCAFFOLDFEM_LAUNCH:-srun --kill-on-bad-exit=1 -n}}"
"""


def _set_flags(plan: SweepPlan) -> str:
    """The sweep's ``--set`` overrides as shell words (the collect step must see the
    same plan as the run, or it would find the cases changed)."""
    return "".join(f" --set {_q(text)}" for text in plan.overrides)


def allocation_script(plan: SweepPlan, out: Path, *, ranks_per_case: int, groups: int,
                      time_limit: str = "04:00:00", image: str | None = None,
                      venv_bin: Path | None = None, workdir: Path | None = None) -> str:
    """One allocation running the whole sweep with ``ranks_per_case`` × ``groups`` ranks."""
    _check_inputs(plan, ranks_per_case, groups, 1, time_limit)
    ntasks = ranks_per_case * groups
    env = _environment(venv_bin or _venv_bin(), image, workdir or Path.cwd())
    logs = f"{check_out_path(out)}/slurm"
    return f"""#!/bin/bash
# scaffoldfem sweep {_q(plan.name)}: {len(plan.cases)} cases,
# {groups} group(s) of {ranks_per_case} rank(s).
# Submit: sbatch {_q(out / "slurm" / "sweep.sbatch")}
# Resubmitting resumes: finished cases (DONE) are skipped, interrupted ones resume.
#SBATCH --job-name=sweep-{plan.name}
#SBATCH --ntasks={ntasks}
#SBATCH --cpus-per-task=1
#SBATCH --time={time_limit}
#SBATCH --output={logs}/%x-%j.out
# SIGTERM 2 minutes before the time limit: the running cases checkpoint.
#SBATCH --signal=TERM@120
##SBATCH --partition=CHANGE_ME
##SBATCH --account=CHANGE_ME
{env}
"${{LAUNCH[@]}}" {ntasks} "${{SF[@]}}" sweep {_q(plan.path)} --out {_q(out)} \\
  --ranks-per-case {ranks_per_case}{_set_flags(plan)}
"""


def array_script(plan: SweepPlan, out: Path, *, ranks_per_case: int,
                 parallel: int = DEFAULT_ARRAY_PARALLEL, time_limit: str = "02:00:00",
                 image: str | None = None, venv_bin: Path | None = None,
                 workdir: Path | None = None) -> str:
    """A job array with one case per task; every task is safe to rerun."""
    _check_inputs(plan, ranks_per_case, 1, parallel, time_limit)
    n = len(plan.cases)
    env = _environment(venv_bin or _venv_bin(), image, workdir or Path.cwd())
    logs = f"{check_out_path(out)}/slurm"
    return f"""#!/bin/bash
# scaffoldfem sweep {_q(plan.name)} as a job array: {n} cases,
# one per task, {ranks_per_case} rank(s) each.
# Submit: sbatch {_q(out / "slurm" / "sweep_array.sbatch")}
# Rerun any task (or the whole array) safely: done cases are skipped, interrupted ones resume.
#SBATCH --job-name=sweep-{plan.name}
#SBATCH --array=0-{n - 1}%{min(parallel, n)}
#SBATCH --ntasks={ranks_per_case}
#SBATCH --cpus-per-task=1
#SBATCH --time={time_limit}
#SBATCH --output={logs}/%x-%A_%a.out
#SBATCH --signal=TERM@120
##SBATCH --partition=CHANGE_ME
##SBATCH --account=CHANGE_ME
{env}
DIR={_q(out)}
ID=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$DIR/cases.txt")
CASE="$DIR/cases/$ID"
status=0
if [ -e "$CASE/DONE" ]; then
  echo "$ID: already done"
else
  FLAGS=()
  if [ -e "$CASE/study.resolved.toml" ]; then FLAGS=(--resume)      # a run in progress
  elif [ -e "$CASE" ]; then FLAGS=(--overwrite); fi                 # created, nothing in it
  # Mesh once per geometry: concurrent tasks wait for the cached mesh, not remesh it.
  flock "$DIR/.mesh.lock" "${{SF[@]}}" mesh "$DIR/studies/$ID.toml" > /dev/null
  "${{LAUNCH[@]}}" {ranks_per_case} "${{SF[@]}}" run "$DIR/studies/$ID.toml" --out "$CASE" \\
    --quiet ${{FLAGS[@]+"${{FLAGS[@]}}"}} || status=$?
fi
# One writer at a time rebuilds results.csv/.parquet from every case directory.
flock "$DIR/.results.lock" "${{SF[@]}}" sweep {_q(plan.path)} --out "$DIR" \\
  --collect-only --quiet{_set_flags(plan)} || true
exit $status
"""


def write_slurm_scripts(plan: SweepPlan, out: Path, *, ranks_per_case: int,
                        groups: int | None = None, image: str | None = None) -> list[Path]:
    """Write ``out/slurm/sweep.sbatch`` and ``out/slurm/sweep_array.sbatch``.

    Args:
        plan: The validated sweep.
        out: Sweep directory (already prepared: ``cases.txt``, ``studies/``).
        ranks_per_case: MPI ranks per case (K).
        groups: Concurrent case groups in the single allocation (default
            ``min(cases, 8)``).
        image: Default Apptainer image (else ``$SCAFFOLDFEM_SIF`` or the venv).

    Returns:
        The paths written: [allocation script, array script].

    Raises:
        StudyError: ``ranks_per_case`` or ``groups`` < 1, or a name or id that is not
            a plain word (one line each).
        RunDirError: ``out`` (or another path) that cannot be written into a script
            safely.
    """
    image = image or os.environ.get("SCAFFOLDFEM_SIF") or None
    groups = max(1, min(len(plan.cases), DEFAULT_GROUPS)) if groups is None else groups
    # Both texts first: a refused value leaves nothing behind.
    texts = [allocation_script(plan, out, ranks_per_case=ranks_per_case, groups=groups,
                               image=image),
             array_script(plan, out, ranks_per_case=ranks_per_case, image=image)]
    (out / "slurm").mkdir(parents=True, exist_ok=True)
    paths = [out / "slurm" / "sweep.sbatch", out / "slurm" / "sweep_array.sbatch"]
    for path, text in zip(paths, texts, strict=True):
        atomic_write_text(path, text)
        path.chmod(0o755)
    return paths
