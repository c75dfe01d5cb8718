"""scaffoldfem.bench."""
