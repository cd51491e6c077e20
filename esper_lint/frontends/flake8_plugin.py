"""flake8 adapter: the same engine, configured from pyproject and `--esper-*` options.

flake8 prints the column it is given plus one, so the engine's 1-based columns are passed as 0-based.
`# noqa: ESP101` and flake8's own select/ignore/per-file-ignores are handled by flake8 itself.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

from esper_lint import __version__
from esper_lint.config import DOCUMENTATION_SCOPES, Config, ConfigError, load_config
from esper_lint.engine import analyse_source
from esper_lint.frontends.errors import InternalError, describe

Flake8Result = tuple[int, int, str, type]


def _comma_list(value: str | Sequence[str]) -> tuple[str, ...]:
    items = value.split(",") if isinstance(value, str) else value
    return tuple(item.strip() for item in items if item.strip())


@lru_cache(maxsize=64)
def _project_config(directory: Path) -> Config | ConfigError:
    try:
        return load_config([directory])
    except ConfigError as exc:
        return exc


class EsperLintChecker:
    name = "esper-lint"
    version = __version__

    _overrides: ClassVar[dict[str, Any]] = {}

    def __init__(self, tree: object, filename: str, lines: Sequence[str]) -> None:
        self.filename = filename
        self.lines = lines

    @classmethod
    def add_options(cls, parser: Any) -> None:
        parser.add_option("--esper-roots", default=None, parse_from_config=True, comma_separated_list=True,
                          help="packages whose private names are checked (default: torch)")
        parser.add_option("--esper-documentation-scope", default=None, parse_from_config=True,
                          choices=DOCUMENTATION_SCOPES, help="'scope' (default) or 'statement'")
        parser.add_option("--esper-check-typing-only", default=None, parse_from_config=True, action="store_true",
                          help="also report references that exist only for type checking")
        parser.add_option("--esper-torch-versions", default=None, parse_from_config=True,
                          help="supported torch range, e.g. '>=2.1,<2.16'")

    @classmethod
    def parse_options(cls, options: argparse.Namespace) -> None:
        overrides: dict[str, Any] = {}
        if options.esper_roots:
            overrides["roots"] = _comma_list(options.esper_roots)
        if options.esper_documentation_scope:
            overrides["documentation_scope"] = options.esper_documentation_scope
        if options.esper_check_typing_only:
            overrides["check_typing_only"] = True
        if options.esper_torch_versions:
            overrides["torch_versions"] = options.esper_torch_versions
        cls._overrides = overrides

    def _config(self) -> Config:
        directory = Path(self.filename).resolve().parent if self.filename not in ("-", "stdin") else Path.cwd()
        loaded = _project_config(directory)
        if isinstance(loaded, ConfigError):
            raise loaded
        # flake8 selects codes itself; the project's select/ignore belong to the esper-lint CLI.
        return replace(loaded, select=("ESP",), ignore=(), per_file_ignores=(), **self._overrides)

    def run(self) -> Iterator[Flake8Result]:
        try:
            config = self._config()
            analysis = analyse_source("".join(self.lines), self.filename, config)
        except Exception as exc:
            raise _failure(self.filename, exc) from exc
        for finding in analysis.findings:
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)


def _failure(filename: str, error: Exception) -> Exception:
    """What flake8 reports as a failed plugin (`FILE: "ESP" failed during execution due to ...`),
    never as a finding. flake8 exits 1 for it, as for findings; only `esper-lint check` has a
    distinct code (3) for an internal error."""
    reason = error if isinstance(error, ConfigError) else InternalError(filename, describe(error))
    try:
        failed: Callable[[str, str, Exception], Exception] = importlib.import_module("flake8.exceptions").PluginExecutionFailed
    except (ImportError, AttributeError):  # hosted by something else than flake8
        return reason
    return failed(filename, "ESP", reason)
