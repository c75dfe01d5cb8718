"""scaffoldfem.fem."""
