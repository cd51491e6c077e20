"""Autofix internals: one module per fix kind, plus the analysis and safety helpers they share.

The public API is :mod:`esper_lint.fixes`.
"""
