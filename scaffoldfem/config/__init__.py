"""Validated study configuration (pydantic v2, units via pint)."""
