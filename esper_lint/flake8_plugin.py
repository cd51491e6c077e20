"""The flake8 plugin's public import path; the adapter lives in `esper_lint.frontends.flake8_plugin`."""

from esper_lint.frontends.flake8_plugin import EsperLintChecker

__all__ = ["EsperLintChecker"]
