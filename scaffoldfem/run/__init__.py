"""scaffoldfem.run."""
