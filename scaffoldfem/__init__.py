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

try:
    __version__ = version("scaffoldfem")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["__version__"]
