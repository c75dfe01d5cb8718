"""Base class of every study section: unknown keys refused, defaults validated."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A study-file table. Unknown keys are errors; defaults go through the validators
    too (so unit strings in defaults are parsed like user input)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, validate_assignment=True)
