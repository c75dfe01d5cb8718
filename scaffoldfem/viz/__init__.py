"""scaffoldfem.viz."""
