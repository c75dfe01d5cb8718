"""scaffoldfem.sweep."""
