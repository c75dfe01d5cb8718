"""scaffoldfem: finite-element design of biomaterial scaffolds for spinal cord injury.

The pip route ships DOLFINx as the ``dolfinx-solver-real`` wheel, whose
``dolfinx_solver`` module must be imported before ``dolfinx``/``petsc4py`` so
that MPI is loaded first. This is the one place it happens: every submodule
imports the package first, so the order holds wherever scaffoldfem is used.
On a conda-forge or container install the module does not exist and DOLFINx
is imported directly.
"""

from importlib.metadata import PackageNotFoundError, version

try:  # pip wheel route; absent on conda-forge / containers
    import dolfinx_solver  # noqa: F401
except ImportError:  # pragma: no cover - depends on the install route
    pass


def _one_blas_thread_per_rank() -> None:
    # Under MPI every rank is already a busy process: OpenBLAS threads on top of it
    # oversubscribe the cores, and a 36k-entry dot product took 16 ms instead of
    # 28 µs on 2 ranks of a 2-core machine (docs/model.md §8).
    import os

    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(var, "1")  # BLAS libraries loaded from now on
        import numpy  # noqa: F401  (so that threadpoolctl sees its BLAS)
        from threadpoolctl import threadpool_limits

        threadpool_limits(limits=1)  # those already loaded


_one_blas_thread_per_rank()

try:
    __version__ = version("scaffoldfem")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
