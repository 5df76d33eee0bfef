"""The package version, in the base layer so any layer can stamp it (the `.edge` writer's
producer field, the CLI's --version) without importing the `sdk` face."""

__version__ = "0.1.0"
