"""Exceptions shared across modules (no DOLFINx imports here)."""

from __future__ import annotations


class SimulationFailed(RuntimeError):
    """A run could not continue (solver diverged below dt_min, NaN, negative
    concentration); the CLI exits with code 3 and this message."""

    def __init__(self, field: str, time: float, reason: str):
        super().__init__(f"field '{field}' failed at t = {time:.6g} day: {reason}")
        self.field = field
        self.time = time
        self.reason = reason
