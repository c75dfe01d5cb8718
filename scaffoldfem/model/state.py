"""The one description of the evolving state of a coupled model.

A step reads and changes exactly what a :class:`ModelState` holds: the in-memory
snapshot that undoes a failed step and the checkpoint on disk are both this
object (``run/checkpoint.py`` maps its arrays to mesh-file indices). Everything
else a part holds is derived from it or fixed at set-up.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from dolfinx import fem


@dataclass
class ModelState:
    """State of a model as plain data, keyed by part-chosen names.

    Attributes:
        scalars: JSON-ready values (time, counters, cumulative balance, maxima).
        cells: Per-local-cell arrays (owned and ghost cells).
        nodes: Per-P1-dof arrays, shape ``(n,)`` or ``(n, 3)`` (owned and ghost dofs).
        local: Arrays that only make sense on this partition (e.g. a P2
            displacement): kept by the in-memory snapshot, not checkpointed; a
            part restored without them recomputes them.
    """

    scalars: dict[str, Any] = field(default_factory=dict)
    cells: dict[str, np.ndarray] = field(default_factory=dict)
    nodes: dict[str, np.ndarray] = field(default_factory=dict)
    local: dict[str, np.ndarray] = field(default_factory=dict)

    def merged(self, *parts: ModelState) -> ModelState:
        """This state with the entries of ``parts`` added (names must not clash)."""
        out = ModelState(dict(self.scalars), dict(self.cells), dict(self.nodes), dict(self.local))
        for p in parts:
            for mine, theirs in (
                (out.scalars, p.scalars),
                (out.cells, p.cells),
                (out.nodes, p.nodes),
                (out.local, p.local),
            ):
                clash = mine.keys() & theirs.keys()
                if clash:
                    raise ValueError(f"state entries defined twice: {sorted(clash)}")
                mine.update(theirs)
        return out

    def copy(self) -> ModelState:
        """A deep copy (arrays and nested scalars)."""
        return copy.deepcopy(self)


class Part(Protocol):
    """What :class:`~scaffoldfem.model.coupled.CoupledModel` asks of each of its parts."""

    def fields(self) -> dict[str, fem.Function]:
        """Output fields by name (empty when the part has none or is switched off)."""

    def state(self) -> ModelState:
        """A copy of the part's evolving state (its own, non-clashing names)."""

    def restore(self, state: ModelState) -> None:
        """Return to ``state`` (parts are restored in construction order)."""

    def destroy(self) -> None:
        """Free PETSc objects (collective; safe to call twice)."""
