"""esper-lint: find private torch API use and enforce the documented-fallback contract."""

__version__ = "0.1.0"
