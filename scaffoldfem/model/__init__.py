"""scaffoldfem.model."""
