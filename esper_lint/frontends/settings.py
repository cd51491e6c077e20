"""Which configuration each file uses: the nearest one above it (hierarchical, as ruff's), or the
one `--config` names, with the command line's `--select`/`--extend-select`/`--ignore` on top.

A file's configuration depends on where the file is, never on which paths a run was given: `check .`
and `check pkg_b` judge `pkg_b/x.py` under the same `pkg_b/pyproject.toml`. Each folder is resolved
once per run, and files that share a configuration share one Config object (so a run groups them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from esper_lint.config import Config, ConfigError, load_config
from esper_lint.frontends import paths

if TYPE_CHECKING:
    from esper_lint.frontends.paths import StrPath

__all__ = ["Settings", "check_selectors", "describe_settings"]


def check_selectors(codes: Sequence[str] | None, option: str) -> None:
    """`--select ESP999` or `--select ""` would select nothing and pass every file: an error instead."""
    if codes is None:
        return
    if not codes:
        raise ConfigError(f"{option} names no code: give codes or prefixes such as ESP101, ESP1 or ALL")
    from esper_lint import catalog

    known = tuple(catalog.all_rules())
    for code in codes:
        if code != "ALL" and not any(rule.startswith(code) for rule in known):
            raise ConfigError(f"{option} has {code!r}, which matches no esper-lint rule (known codes: {', '.join(known)})")


class Settings:
    """The configurations of one run."""

    def __init__(
        self,
        explicit: StrPath | None = None,
        *,
        select: Sequence[str] | None = None,
        extend_select: Sequence[str] = (),
        ignore: Sequence[str] = (),
    ) -> None:
        self.explicit = explicit
        self.select = tuple(select) if select is not None else None
        self.extend_select = tuple(extend_select)
        self.ignore = tuple(ignore)
        self._by_folder: dict[str, Config] = {}
        self._shared: dict[tuple[str, str, str], Config] = {}

    def for_folder(self, folder: StrPath) -> Config:
        key = os.path.abspath(folder)
        config = self._by_folder.get(key)
        if config is None:
            loaded = load_config(explicit=self.explicit) if self.explicit is not None else load_config([key])
            config = self._share(self._overridden(loaded))
            self._by_folder[key] = config
        return config

    def for_file(self, path: StrPath) -> Config:
        return self.for_folder(paths.parent(path))

    def group_files(self, files: Sequence[str]) -> list[tuple[Config, list[str]]]:
        """`files` by configuration, in the order first met: a run lints each group under its own."""
        groups: dict[int, tuple[Config, list[str]]] = {}
        for path in files:
            config = self.for_file(path)
            groups.setdefault(id(config), (config, []))[1].append(path)
        return list(groups.values())

    def declaring(self, groups: Sequence[tuple[Config, list[str]]], folders: Sequence[str]) -> list[Config]:
        """The configurations whose central declarations a run judges, each once: those of the
        files checked (`groups`), and those of the `folders` named (a declaration is judged even
        where no file uses it)."""
        candidates = [*(config for config, _ in groups), *(self.for_folder(folder) for folder in folders)]
        chosen: dict[str, Config] = {}
        for config in candidates:
            if config.private_apis:
                chosen.setdefault(str(config.source_str), config)
        return list(chosen.values())

    def configs(self) -> list[Config]:
        """Every distinct configuration resolved so far, in the order first met."""
        return list(self._shared.values())

    def _overridden(self, config: Config) -> Config:
        if self.select is not None:  # replaces the configured select and extend-select, as in ruff
            config = config.replace(select=self.select, extend_select=())
        if self.extend_select:
            config = config.replace(extend_select=(*config.extend_select, *self.extend_select))
        if self.ignore:
            config = config.replace(ignore=(*config.ignore, *self.ignore))
        return config

    def _share(self, config: Config) -> Config:
        key = (str(config.source_str), config.project_root_str, config.fingerprint())
        return self._shared.setdefault(key, config)


_NO_RANGE = " (no range known: ESP202 is not judged, ESP301 asks the newest indexed release)"


def describe_settings(path: StrPath, config: Config) -> str:
    """`--show-settings`: which configuration won for `path`, and the values it resolved to."""
    source = config.source_str if config.source_str is not None else "none found: the defaults"
    lines = [
        f"Settings for {paths.normalized(path)}",
        f"  configuration file: {source}",
        f"  project root: {config.project_root_str}",
        f"  select = {list(config.select)}",
        f"  extend-select = {list(config.extend_select)}",
        f"  ignore = {list(config.ignore)}",
        f"  per-file-ignores = { {pattern: list(codes) for pattern, codes in config.per_file_ignores} }",
        f"  exclude = {list(config.exclude)}",
        f"  extend-exclude = {list(config.extend_exclude)}",
        f"  roots = {list(config.roots)}",
        f"  documentation-scope = {config.documentation_scope!r}",
        f"  check-typing-only = {str(config.check_typing_only).lower()}",
        f"  torch-versions = {config.torch_versions!r}" + ("" if config.torch_versions else _NO_RANGE),
        f"  private-apis = {sorted(config.private_apis)}",
    ]
    return "\n".join(lines) + "\n"
