"""Maintainer tools, not shipped in the wheel: the torch index builder and its validator."""
