"""scaffoldfem.geometry."""
