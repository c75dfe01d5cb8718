"""scaffoldfem.axons."""
