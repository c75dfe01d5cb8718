"""The Python API of scaffoldfem, for scripts and notebooks.

::

    from scaffoldfem.api import Results, Study, run

    study = Study.from_toml("studies/baseline.toml", geometry__resolution="coarse",
                            overrides={"species.BDNF.half_life": "2 h"})
    res = run(study, out="runs/coarse_bdnf2h", overwrite=True)
    res.metrics["axons"]["crossing_fraction"]            # metrics.json as a dict
    res.timeseries.plot(x="t_day", y="lesion_mean_BDNF_ng_per_mL")  # pandas
    res.final_mesh().plot(scalars="BDNF")                 # PyVista
    Results("runs/baseline").axons.head()                 # any run directory

* :class:`Study` — :meth:`Study.from_toml` and :meth:`Study.default` take the
  overrides of ``--set``: dotted keys (list elements by name,
  ``species.BDNF.half_life``) in ``overrides={...}``, or as keywords with ``__``
  for each dot (``geometry__resolution="coarse"``); values as in the file
  (``"2 h"``, ``0.85``). A bad override raises :class:`StudyError`, one line per
  problem naming the key.
* :func:`run` — the run of ``scaffoldfem run`` (figures included), returning
  :class:`Results`; :func:`sweep`, :func:`slurm_scripts` and :func:`plot` are
  ``scaffoldfem sweep``, ``sweep --slurm`` and ``plot``.
* :class:`Results` — a run directory: ``metrics`` (dict), ``timeseries``,
  ``regions``, ``centerline``, ``axons`` (pandas), ``final_mesh()``, ``fields()``
  (sagittal slices by time), ``trajectories`` (PyVista), ``study``, ``figures``.

Errors are the :class:`~scaffoldfem.errors.ScaffoldfemError` family (each with
the ``exit_code`` the CLI returns). Under MPI (``mpiexec -n 2 python script.py``)
:func:`run` and :func:`sweep` are collective: call them on every rank.
Importing this module loads DOLFINx (the CLI imports it only for the commands
that need it).
"""

from scaffoldfem.api.results import Results
from scaffoldfem.api.running import plot, run, slurm_scripts, sweep
from scaffoldfem.config.study import Study
from scaffoldfem.errors import (
    RunDirError,
    ScaffoldfemError,
    SimulationFailed,
    StudyError,
)
from scaffoldfem.sweep.runner import SweepSummary

__all__ = [
    "Results",
    "RunDirError",
    "ScaffoldfemError",
    "SimulationFailed",
    "Study",
    "StudyError",
    "SweepSummary",
    "plot",
    "run",
    "slurm_scripts",
    "sweep",
]
