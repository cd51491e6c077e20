"""`[tool.esper-lint]` in the nearest pyproject.toml: read, validated, and turned into a Config."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from esper_lint.frontends import paths as strpaths
from esper_lint.frontends.reading import MIB, read_regular_file

if TYPE_CHECKING:  # pathlib loads only where a path's parts are matched: see frontends/paths.py
    from pathlib import Path

    from esper_lint.frontends.paths import StrPath

TABLE = "tool.esper-lint"
DOCUMENTATION_SCOPES = ("scope", "statement")
_CODE_PREFIX = re.compile(r"(ALL|ESP\d{0,3})")


class ConfigError(Exception):
    """A configuration problem; the message names the file and the key."""


class Config:
    """The effective configuration of a file. Immutable: `replace` makes a changed copy.

    A hand-written class rather than a frozen dataclass: `dataclasses` imports `inspect`, which
    alone costs a clean pre-commit run about a tenth of its time (issue 20's budget). For the same
    reason the configuration file and the project root are held as strings (`source_str`,
    `project_root_str`, spelled as pathlib spells them); `source` and `project_root` give them as
    Paths, for the callers that want one."""

    _FIELDS = (
        "select",
        "extend_select",  # added to `select` (where ESP002, off by default, is turned on)
        "ignore",
        "exclude",
        "extend_exclude",
        "per_file_ignores",
        "roots",
        "documentation_scope",
        "check_typing_only",
        "torch_versions",
        "private_apis",
        "source",
        "project_root",
        "noqa",  # apply the noqa comments (esper_lint/noqa.py); False under flake8, which applies them itself
    )
    # The fields, with the two paths held as strings under their own names.
    __slots__ = _STORED = tuple({"source": "source_str", "project_root": "project_root_str"}.get(name, name) for name in _FIELDS)
    select: tuple[str, ...]
    extend_select: tuple[str, ...]
    ignore: tuple[str, ...]
    exclude: tuple[str, ...]
    extend_exclude: tuple[str, ...]
    per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...]
    roots: tuple[str, ...]
    documentation_scope: str
    check_typing_only: bool
    torch_versions: str | None
    private_apis: Mapping[str, Mapping[str, str]]
    source_str: str | None
    project_root_str: str
    noqa: bool

    def __init__(
        self,
        select: tuple[str, ...] = ("ESP",),
        extend_select: tuple[str, ...] = (),
        ignore: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        extend_exclude: tuple[str, ...] = (),
        per_file_ignores: tuple[tuple[str, tuple[str, ...]], ...] = (),
        roots: tuple[str, ...] = ("torch",),
        documentation_scope: str = "scope",
        check_typing_only: bool = False,
        torch_versions: str | None = None,
        private_apis: Mapping[str, Mapping[str, str]] | None = None,
        source: StrPath | None = None,
        project_root: StrPath | None = None,
        noqa: bool = True,
    ) -> None:
        values = (
            select,
            extend_select,
            ignore,
            exclude,
            extend_exclude,
            per_file_ignores,
            roots,
            documentation_scope,
            check_typing_only,
            torch_versions,
            {} if private_apis is None else private_apis,
            None if source is None else strpaths.normalized(source),
            strpaths.normalized(os.getcwd() if project_root is None else project_root),
            noqa,
        )
        for name, value in zip(self._STORED, values, strict=True):
            object.__setattr__(self, name, value)

    @property
    def source(self) -> Path | None:
        """The configuration file, or None where the defaults apply."""
        if self.source_str is None:
            return None
        from pathlib import Path

        return Path(self.source_str)

    @property
    def project_root(self) -> Path:
        """The folder of the configuration file (resolved), else the working directory."""
        from pathlib import Path

        return Path(self.project_root_str)

    def _values(self) -> tuple[Any, ...]:
        """The fields in `_FIELDS` order (the paths as strings)."""
        return tuple(getattr(self, name) for name in self._STORED)

    def replace(self, **changes: Any) -> Config:
        """A copy with `changes` (field names as keywords), like `dataclasses.replace`."""
        unknown = set(changes) - set(self._FIELDS)
        if unknown:
            raise TypeError(f"Config has no field {sorted(unknown)[0]!r}")
        current = dict(zip(self._FIELDS, self._values(), strict=True))
        return Config(**{name: changes.get(name, current[name]) for name in self._FIELDS})

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"Config is immutable: cannot assign to {name!r} (use replace())")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Config is immutable: cannot delete {name!r}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        return "Config(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in self._FIELDS) + ")"

    def __reduce__(self) -> tuple[Any, ...]:  # pickled for the worker processes
        return (Config, self._values())

    def enabled(self, code: str, path: str | None = None) -> bool:
        ignore: Iterable[str] = self.ignore
        if path is not None and self.per_file_ignores:
            ignore = [*ignore, *self._file_ignores(path)]
        return code_enabled(code, (*self.select, *self.extend_select), ignore)

    def _file_ignores(self, path: str) -> list[str]:
        relative = _relative_posix(path, self.project_root_str)
        codes: list[str] = []
        for pattern, pattern_codes in self.per_file_ignores:
            if _glob_match(relative, pattern):
                codes.extend(pattern_codes)
        return codes

    def is_excluded(self, path: StrPath) -> bool:
        """`exclude` patterns match the path relative to the project root or any of its parts."""
        patterns = (*self.exclude, *self.extend_exclude)
        if not patterns:
            return False
        relative = _relative_posix(path, self.project_root_str)
        return any(_glob_match(relative, pattern) for pattern in patterns)

    def fingerprint(self) -> str:
        """Everything that changes findings, for caches."""
        return repr(
            (
                self.select,
                self.extend_select,
                self.ignore,
                self.per_file_ignores,
                self.roots,
                self.documentation_scope,
                self.check_typing_only,
                self.torch_versions,
                sorted((k, sorted(v.items())) for k, v in self.private_apis.items()),
                self.noqa,
            )
        )


# Rules that `ALL` and `ESP` leave out: only a selector more specific than `ESP` (ESP0, ESP002) turns
# them on. Their documents say `default = "off"` in the front matter; tests/test_rules_docs.py keeps
# the two in step (the catalog is not loaded on a clean run, so the set is written here too).
OFF_BY_DEFAULT = frozenset({"ESP002"})


def code_enabled(code: str, select: Iterable[str], ignore: Iterable[str]) -> bool:
    """ruff's rule: the most specific matching prefix wins, and `ignore` wins a tie. A rule that is
    off by default needs a selector more specific than `ESP`."""

    def best(prefixes: Iterable[str]) -> int:
        lengths = [0 if p == "ALL" else len(p) for p in prefixes if p == "ALL" or code.startswith(p)]
        return max(lengths, default=-1)

    chosen = best(select)
    if code in OFF_BY_DEFAULT and chosen <= len("ESP"):
        return False
    return chosen >= 0 and chosen > best(ignore)


def _resolved(path: StrPath) -> str:
    """`Path.resolve`, except that a symlink loop (RuntimeError before 3.13) stays as written."""
    return strpaths.resolved(path)


def _relative_posix(path: StrPath, root: StrPath) -> str:
    """Only where `exclude` or `per-file-ignores` has patterns: pathlib is imported then."""
    from pathlib import Path

    try:
        return Path(_resolved(path)).relative_to(_resolved(root)).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _glob_match(relative: str, pattern: str) -> bool:
    import fnmatch
    from pathlib import PurePosixPath

    pattern = pattern.rstrip("/")
    if fnmatch.fnmatchcase(relative, pattern) or fnmatch.fnmatchcase(relative, pattern + "/*"):
        return True
    parts = PurePosixPath(relative).parts
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in parts)
    return any(fnmatch.fnmatchcase("/".join(parts[:end]), pattern) for end in range(1, len(parts) + 1))


# ---------------------------------------------------------------------------- validation
def _string_list(value: Any, key: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: `{key}` must be a list of strings, got {value!r}")
    return tuple(value)


def _codes(value: Any, key: str, where: str) -> tuple[str, ...]:
    codes = _string_list(value, key, where)
    for code in codes:
        if not _CODE_PREFIX.fullmatch(code):
            raise ConfigError(f"{where}: `{key}` has {code!r}, which is not an esper-lint code or prefix (e.g. ESP101, ESP1, ESP, ALL)")
        if not _names_a_rule(code):
            raise ConfigError(f"{where}: `{key}` has {code!r}, which matches no esper-lint rule (known codes: {', '.join(_known_codes())})")
    return codes


def _known_codes() -> tuple[str, ...]:
    from esper_lint import catalog

    return tuple(catalog.all_rules())


def _names_a_rule(code: str) -> bool:
    """A typo such as ESP110 for ESP101 would otherwise select (or ignore) nothing, silently."""
    return code == "ALL" or any(known.startswith(code) for known in _known_codes())


def _roots(value: Any, key: str, where: str) -> tuple[str, ...]:
    roots = _string_list(value, key, where)
    if not roots:
        raise ConfigError(f"{where}: `{key}` must name at least one package")
    for root in roots:
        if not all(part.isidentifier() for part in root.split(".")):
            raise ConfigError(f"{where}: `{key}` has {root!r}, which is not a dotted package name")
    return roots


def _per_file_ignores(value: Any, key: str, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{key}` must be a table of glob = [codes], got {value!r}")
    return tuple((pattern, _codes(codes, f"{key}.{pattern}", where)) for pattern, codes in value.items())


def _choice(choices: Sequence[str]) -> Callable[[Any, str, str], str]:
    def check(value: Any, key: str, where: str) -> str:
        if value not in choices:
            raise ConfigError(f"{where}: `{key}` must be one of {', '.join(map(repr, choices))}, got {value!r}")
        return str(value)

    return check


def _boolean(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: `{key}` must be true or false, got {value!r}")
    return value


def _string(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where}: `{key}` must be a string, got {value!r}")
    return value


def _torch_versions(value: Any, key: str, where: str) -> str:
    from esper_lint.torch_index.versions import quote_short

    text = _string(value, key, where)
    problem = torch_range_problem(text)
    if problem is not None:
        raise ConfigError(f"{where}: `{key}` = {quote_short(text)} {problem}")
    return text


def torch_range_problem(text: str) -> str | None:
    """Why `text` cannot be a supported torch range, or None: it must parse, and hold at least one
    release the torch index knows (else every "throughout the supported range" verdict is vacuous)."""
    from esper_lint.torch_index.versions import SpecifierError, indexed_releases, releases_in_range

    if not text.strip():
        return "is empty: write a range like '>=2.1,<2.16'"
    try:
        releases = indexed_releases()
        covered = releases_in_range(text, releases)
    except SpecifierError as exc:
        reason = str(exc) if len(str(exc)) <= 200 else str(exc)[:197] + "..."
        return f"is not a version range like '>=2.1,<2.16': {reason}"
    if not covered:
        return f"holds no torch release the bundled index knows ({releases[0]}–{releases[-1]})"
    return None


def _private_apis(value: Any, key: str, where: str) -> dict[str, dict[str, str]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: `{key}` must be a table of private names")
    declarations: dict[str, dict[str, str]] = {}
    for name, entry in value.items():
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: `{key}.\"{name}\"` must be a table with since, fallback and reason")
        for field_name, field_value in entry.items():
            if field_name not in ("since", "fallback", "reason"):
                raise ConfigError(f"{where}: unknown key `{key}.\"{name}\".{field_name}` (expected since, fallback, reason)")
            if not isinstance(field_value, str):
                raise ConfigError(f"{where}: `{key}.\"{name}\".{field_name}` must be a string")
        declarations[name] = dict(entry)
    return declarations


_KEYS: dict[str, tuple[str, Callable[[Any, str, str], Any]]] = {
    "select": ("select", _codes),
    "extend-select": ("extend_select", _codes),
    "ignore": ("ignore", _codes),
    "exclude": ("exclude", _string_list),
    "extend-exclude": ("extend_exclude", _string_list),
    "per-file-ignores": ("per_file_ignores", _per_file_ignores),
    "roots": ("roots", _roots),
    "documentation-scope": ("documentation_scope", _choice(DOCUMENTATION_SCOPES)),
    "check-typing-only": ("check_typing_only", _boolean),
    "torch-versions": ("torch_versions", _torch_versions),
    "private-apis": ("private_apis", _private_apis),
}


def config_from_table(table: Mapping[str, Any], where: str, base: Config | None = None) -> Config:
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key not in _KEYS:
            raise ConfigError(f"{where}: unknown key `{key}` in [{TABLE}] (known keys: {', '.join(_KEYS)})")
        attribute, check = _KEYS[key]
        values[attribute] = check(value, key, where)
    return (base or Config()).replace(**values)


# No real pyproject.toml comes near this; a larger one (or a link to /dev/zero) is refused unread.
MAX_PYPROJECT_BYTES = 4 * MIB


def read_pyproject(path: StrPath) -> dict[str, Any]:
    """The parsed TOML of `path`; any problem (unreadable, not a regular file, too large, invalid,
    nested too deeply, a number too long for Python) is a ConfigError naming the file."""
    path = strpaths.normalized(path)
    try:
        data = read_regular_file(path, MAX_PYPROJECT_BYTES)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    from esper_lint.data import tomllib  # loaded when a configuration file is read, not before

    try:
        return tomllib.loads(data.decode("utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"{path}: invalid TOML: nested too deeply to read") from None
    except ValueError as exc:  # tomllib's int() of a number of 4,300 digits or more
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _esper_table(data: Mapping[str, Any]) -> Any:
    return data.get("tool", {}).get("esper-lint") if isinstance(data.get("tool"), dict) else None


# A folder holding one of these is a repository's root: the search for configuration and project
# metadata does not leave it (a parent folder's table is not the repository's).
_REPOSITORY_MARKERS = (".git", ".hg")


# Files that hold only esper-lint's settings, as top-level keys (ruff's ruff.toml/.ruff.toml); in one
# folder they win over pyproject.toml, the first of them first.
CONFIG_FILE_NAMES = (".esper-lint.toml", "esper-lint.toml")


def _directories(start: StrPath) -> Iterator[str]:
    """The folders from `start` upward, up to the repository's root where there is one."""
    directory = start if os.path.isdir(start) else strpaths.parent(start)  # False, not an error, where it cannot be searched
    resolved = _resolved(directory)
    for candidate_dir in (resolved, *strpaths.parents(resolved)):
        yield candidate_dir
        if any(os.path.exists(strpaths.join(candidate_dir, marker)) for marker in _REPOSITORY_MARKERS):
            return


def _candidates(start: StrPath) -> Iterator[str]:
    """The pyproject.toml files from `start` upward, up to the repository's root where there is one."""
    for candidate_dir in _directories(start):
        candidate = strpaths.join(candidate_dir, "pyproject.toml")
        if os.path.isfile(candidate):
            yield candidate


def find_pyproject(start: StrPath) -> str | None:
    """The configuration file of the files in `start`: in the nearest folder that has one, an
    `.esper-lint.toml`, an `esper-lint.toml` or a pyproject.toml with a [tool.esper-lint] table
    (ruff's rule), else the nearest pyproject.toml at all; the search stops at the repository's root
    (a folder with `.git` or `.hg`)."""
    nearest: str | None = None
    for candidate_dir in _directories(start):
        for name in CONFIG_FILE_NAMES:
            if os.path.isfile(strpaths.join(candidate_dir, name)):
                return strpaths.join(candidate_dir, name)
        candidate = strpaths.join(candidate_dir, "pyproject.toml")
        if not os.path.isfile(candidate):
            continue
        nearest = nearest or candidate
        try:
            if b"esper-lint" in _raw(candidate) and _esper_table(read_pyproject(candidate)) is not None:
                return candidate
        except (OSError, ConfigError):
            return candidate  # let load_config report the broken file
    return nearest


def find_project(start: StrPath) -> str | None:
    """The pyproject.toml of the project the paths belong to: the nearest one with a [project]
    table, within the repository."""
    for candidate in _candidates(start):
        try:
            if b"project" in _raw(candidate) and isinstance(read_pyproject(candidate).get("project"), dict):
                return candidate
        except (OSError, ConfigError):
            return None  # a broken file supplies no range; it is reported where it is the configuration
    return None


def is_settings_file(path: StrPath) -> bool:
    """An esper-lint.toml (settings as top-level keys) rather than a pyproject.toml."""
    return strpaths.name(path) in CONFIG_FILE_NAMES


def _raw(path: StrPath) -> bytes:
    return read_regular_file(path, MAX_PYPROJECT_BYTES)


def load_config(paths: Sequence[StrPath] = (), explicit: StrPath | None = None) -> Config:
    """The configuration: `explicit`, or the nearest one (see `find_pyproject`). The default torch
    range is the project's own torch dependency: that of the nearest pyproject.toml with project
    metadata, which a parent folder's table does not override.

    `explicit` must hold esper-lint's settings: a [tool.esper-lint] table, or top-level keys in a
    file named esper-lint.toml or .esper-lint.toml."""
    if explicit is not None:
        from pathlib import Path  # `--config`: a command line pre-commit does not run

        if not Path(explicit).exists():
            raise ConfigError(f"{strpaths.normalized(explicit)}: configuration file not found")
        pyproject: str | None = strpaths.normalized(explicit)
        project: str | None = pyproject
    else:
        start = _common_start(paths)
        pyproject = find_pyproject(start)
        project = find_project(start) or pyproject
    if pyproject is None:
        return Config()
    data = read_pyproject(pyproject)
    table = _esper_table(data)
    if table is None and is_settings_file(pyproject):
        table = data
    if table is None and explicit is not None:
        raise ConfigError(f"{pyproject}: no [{TABLE}] table (a file named esper-lint.toml may hold the settings as top-level keys)")
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [{TABLE}] must be a table")
    base = Config(source=pyproject, project_root=_resolved(strpaths.parent(pyproject)))
    if table is None or "torch-versions" not in table:
        # Only where the settings leave the range to the project: a broken requirement then fails the run.
        metadata_file = pyproject if project is None else project
        metadata = data if _same_file(metadata_file, pyproject) else read_pyproject(metadata_file)
        base = base.replace(torch_versions=_declared_torch_range(metadata, metadata_file))
    if table is None:
        return base
    return config_from_table(table, str(pyproject), base)


def _same_file(one: StrPath, other: StrPath) -> bool:
    return _resolved(one) == _resolved(other)


def _declared_torch_range(data: Mapping[str, Any], where: StrPath) -> str | None:
    """The supported torch range by default: the project's own dependency on torch (the first
    requirement for torch with a specifier). A requirement that does not parse, or that holds no
    indexed release, is an error naming the file: silently meaning "no range" fails open."""
    from esper_lint.torch_index.versions import quote_short, requirement_specifier

    project = data.get("project")
    if not isinstance(project, dict):
        return None
    groups: list[Any] = [project.get("dependencies") or []]
    optional = project.get("optional-dependencies") or {}
    if isinstance(optional, dict):
        groups.extend(optional.values())
    for group in groups:
        if not isinstance(group, list):
            continue
        for requirement in group:
            if not isinstance(requirement, str):
                continue
            spec = requirement_specifier(requirement)
            if not spec:
                continue
            problem = torch_range_problem(spec)
            if problem is not None:
                raise ConfigError(
                    f"{where}: the torch requirement {quote_short(requirement.strip())} {problem}"
                    f" (set `torch-versions` in [{TABLE}] to name the supported range yourself)"
                )
            return spec
    return None


def _common_start(paths: Sequence[StrPath]) -> str:
    if not paths:
        return os.getcwd()
    resolved = [_resolved(path) for path in paths]
    common = resolved[0] if os.path.isdir(resolved[0]) else strpaths.parent(resolved[0])
    for path in resolved[1:]:
        while common not in (path, *strpaths.parents(path)):
            common = strpaths.parent(common)
    return common
