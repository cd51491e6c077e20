"""flake8 adapter: the same engine, configured from pyproject and `--esper-*` options.

flake8 prints the column it is given plus one, so the engine's 1-based columns are passed as 0-based.

The answer is the CLI's (tests/test_parity.py): the nearest `[tool.esper-lint]` selects and ignores
codes (`select`, `ignore`, `per-file-ignores`) before flake8's own selection applies on top. flake8
applies noqa comments itself, by the same rules as the engine (esper_lint/noqa.py), so the engine
hands it every finding (plus ESP002 where the project enables it) and flake8 filters them.

flake8 cannot report on pyproject.toml. A use covered only by an invalid central declaration is
therefore reported at the use, as ESP102 naming the declaration's file and line, where the CLI
reports the declaration itself; stale declarations (ESP103) need the whole project and are left to
`esper-lint check`.

A configuration error (an unknown key, a bad `--esper-torch-versions`) is one line on stderr naming
the file and the key, and flake8 exits 2; it is found before flake8 checks a file, for the
configurations of the paths flake8 was given. A broken configuration deeper down, found only when
flake8 reaches its files, fails the plugin as flake8 reports any plugin failure.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, NoReturn

from esper_lint import __version__
from esper_lint.config import DOCUMENTATION_SCOPES, Config, ConfigError, load_config, torch_range_problem
from esper_lint.engine import analyse_source
from esper_lint.frontends.errors import InternalError, describe
from esper_lint.model import Finding

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


_invalid_cache: dict[tuple[Path | None, str], dict[str, str]] = {}


def _invalid_declarations(config: Config) -> dict[str, str]:
    """Each invalid central declaration of `config`: the details ESP102 reports at its uses."""
    if not config.private_apis:
        return {}
    key = (config.source, config.fingerprint())
    if key not in _invalid_cache:
        _invalid_cache[key] = _judge_declarations(config)
    return _invalid_cache[key]


def _judge_declarations(config: Config) -> dict[str, str]:
    from esper_lint.analysis.declarations import declaration_line, declaration_problems
    from esper_lint.frontends.discovery import declarations_display

    invalid: dict[str, str] = {}
    for name, entry in config.private_apis.items():
        problems = declaration_problems(name, entry, config.roots)
        if problems:
            where = f"{declarations_display(config.source)}:{declaration_line(config.source, name) if config.source else 1}"
            invalid[name] = f"its central declaration at {where} is invalid: {'; '.join(problems)}"
    return invalid


def _folders_with_settings(top: Path, excluded: Sequence[str]) -> Iterator[Path]:
    """`top`, and each folder below it holding a file that may configure esper-lint, skipping what
    discovery skips and flake8's `exclude` patterns (matched as flake8 does: name or whole path)."""
    import fnmatch
    import os

    from esper_lint.config import CONFIG_FILE_NAMES
    from esper_lint.frontends.discovery import skip_folder

    yield top
    names = ("pyproject.toml", *CONFIG_FILE_NAMES)
    for directory, dirnames, filenames in os.walk(top):
        here = Path(directory)
        dirnames[:] = [
            name
            for name in dirnames
            if not skip_folder(here, name)
            and not any(fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(str(here / name), pattern) for pattern in excluded)
        ]
        if here != top and any(name in filenames for name in names):
            yield here


def _fail(message: str) -> NoReturn:
    """A configuration error under flake8: one line, and exit 2 (flake8's own usage-error code)."""
    print(f"flake8: esper-lint: error: {message}", file=sys.stderr)
    raise SystemExit(2)


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
            problem = torch_range_problem(options.esper_torch_versions)
            if problem is not None:
                _fail(f"--esper-torch-versions (esper-torch-versions in flake8's settings) {options.esper_torch_versions!r} {problem}")
            overrides["torch_versions"] = options.esper_torch_versions
        cls._overrides = overrides
        # The configurations of the paths flake8 was given, and of the folders below them that hold
        # one, checked before any file is: an error found inside a file's check would reach the
        # user as a plugin failure with a traceback.
        excluded = [*(getattr(options, "exclude", None) or ()), *(getattr(options, "extend_exclude", None) or ())]
        for name in getattr(options, "filenames", None) or ["."]:
            if name == "-":
                continue
            start = Path(name).resolve()
            folders = _folders_with_settings(start, excluded) if start.is_dir() else iter([start.parent])
            for folder in folders:
                loaded = _project_config(folder)
                if isinstance(loaded, ConfigError):
                    _fail(str(loaded))

    def _config(self) -> Config:
        directory = Path(self.filename).resolve().parent if self.filename not in ("-", "stdin") else Path.cwd()
        loaded = _project_config(directory)
        if isinstance(loaded, ConfigError):
            raise loaded
        return loaded.replace(**self._overrides)

    def run(self) -> Iterator[Flake8Result]:
        try:
            config = self._config()
            invalid = _invalid_declarations(config)
            if invalid:
                config = config.replace(private_apis={k: v for k, v in config.private_apis.items() if k not in invalid})
            # flake8 applies the noqa comments itself (and honours its --disable-noqa).
            analysis = analyse_source("".join(self.lines), self.filename, config.replace(noqa=False))
            findings = [_at_use(finding, invalid) for finding in analysis.findings] if invalid else analysis.findings
        except Exception as exc:
            raise _failure(self.filename, exc) from exc
        for finding in findings:
            yield finding.line, finding.column - 1, f"{finding.code} {finding.message}", type(self)


def _at_use(finding: Finding, invalid: dict[str, str]) -> Finding:
    """An undocumented use whose only cover is an invalid central declaration: ESP102 at the use."""
    if finding.code != "ESP101" or finding.name is None:
        return finding
    from esper_lint import catalog
    from esper_lint.names import covers

    for declared, details in invalid.items():
        if covers(declared, finding.name):
            message = catalog.message("ESP102", name=finding.name, details=details)
            return finding._replace(code="ESP102", message=message)
    return finding


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
