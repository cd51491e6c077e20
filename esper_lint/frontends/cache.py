"""The result cache: each file's result, found again by one `stat` when the file has not changed.

Layout, under `.esper-lint-cache/` in the project root (or `--cache-dir`):

    v2/<run key>/<folder key>.json    one shard per linted folder
    v2/tmp/                           shards being written (renamed into place when complete)

The run key hashes everything besides a file's own bytes that can change its result: esper-lint's
code and data (every file of the package and of `rules/`, by content, so an editable or `git+...`
install with changed code but the same version is a new key), the libcst and Python versions, the
effective configuration, the resolved project root (per-file-ignores match paths relative to it)
and whether references are recorded. Within a run key, an entry is found by the file's folder and
name (symbolic links resolved, relative to the project root) and its displayed path. It holds the
file's size, modification and change times, mode and inode as they were when it was read, the
time it was read, a hash of the bytes read, and the result.

A warm run stats each file and reads nothing else but the shards (ruff's cache works the same
way). Where the stat matches the entry, the result is served without reading the file, but only
when the stat can vouch for the bytes: the modification and change times must lie at least
`RACY_WINDOW_NS` (2 s) before the time the file was read. A rewrite within a file system's
timestamp granularity of that read could otherwise keep size and times (git's "racily clean"
problem); such an entry, or one whose stat differs in anything but size, is checked by hashing the
file's bytes, and the entry is stamped anew when they match. The change time cannot be set by
tools that restore modification times (`cp -p`, `rsync -t`, `tar`), so they cannot fake a match.
`ESPER_LINT_STAT_CACHE=0` turns the stat shortcut off (every entry is checked by its hash);
`--no-cache` turns the cache off.

Nothing read from the cache is trusted: a shard must be a regular file (not a link, FIFO or
device), at most `SHARD_LIMIT` bytes, and valid JSON of the expected shape, and each entry is
checked field by field; anything else is a miss, recomputed and overwritten. Shards are written
to a temporary file that is renamed into place, or removed when the write fails (a full disk), so
concurrent runs can share the cache; one run may lose another's entries, which only costs speed.
Bounds: a shard holds only files that still exist, the `KEEP_RUN_KEYS` most recently written run
keys are kept (older ones, and the v1 layout, are removed when a new one is made), and temporary
files left by a killed run are removed after an hour.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import sys
import time
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from esper_lint.config import Config
from esper_lint.data import rules_dir
from esper_lint.frontends.paths import StrPath
from esper_lint.frontends.runner import CACHE_DIR_NAME  # named where a clean run can read it without this module
from esper_lint.model import Analysis, CallShapeTuple, Finding, ReferenceRecord

__all__ = [
    "CACHE_DIR_NAME",
    "RACY_WINDOW_NS",
    "STAT_SHORTCUT_ENV",
    "ResultCache",
    "Snapshot",
    "begin_read",
    "finish_read",
    "tool_fingerprint",
]

LAYOUT = "v2"
STAT_SHORTCUT_ENV = "ESPER_LINT_STAT_CACHE"  # "0": never trust a stat, compare hashes
RACY_WINDOW_NS = 2_000_000_000  # coarser than any file system's timestamps but FAT's (2 s)
SHARD_LIMIT = 64 * 1024 * 1024
KEEP_RUN_KEYS = 8
STALE_TEMPORARY_S = 3600

# A stat as the cache compares it: size, mtime_ns, ctime_ns, mode, inode.
Stamp = tuple[int, int, int, int, int]


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def hexdigest(self) -> str: ...


def _new_hash() -> _Hash:
    """BLAKE2b from the interpreter's built-in module: `hashlib` would load OpenSSL first, which
    costs a single-file run more than all the hashing it does."""
    try:
        from _blake2 import blake2b
    except ImportError:  # pragma: no cover - an interpreter built without it
        from hashlib import blake2b
    return blake2b(digest_size=32)


def digest(data: bytes) -> str:
    hashed = _new_hash()
    hashed.update(data)
    return hashed.hexdigest()


# ---------------------------------------------------------------------------------------- keys
class ToolFingerprint(NamedTuple):
    """esper-lint's own code and data by content, with the libcst and Python versions (`value`),
    and the stat of all those files (`stat_key`, None while one of them is younger than the racy
    window), under which the cache remembers `value`."""

    value: str
    stat_key: str | None


def tool_fingerprint(memo_folder: Path | None = None) -> str:
    """The content hash of every file of the package and of `rules/`, with the libcst and Python
    versions. Hashing 1.5 MB on every run would cost a single-file run milliseconds, so the hash
    is remembered in `memo_folder` under the files' stats once every file is older than the racy
    window: no two contents of a file share a stat that lies that far back (the argument made for
    linted files). A younger file (an install or an edit seconds ago) is hashed every time."""
    return _fingerprint(memo_folder).value


@lru_cache(maxsize=8)
def _fingerprint(memo_folder: Path | None) -> ToolFingerprint:
    files = _package_files()
    versions = f"{sys.version}\0{sys.implementation.cache_tag}\0".encode() + _libcst_version()
    stamps = _new_hash()
    stamps.update(versions)
    settled_before = time.time_ns() - RACY_WINDOW_NS
    settled = True
    for relative, location in files:
        try:
            info = os.stat(location)
        except OSError:
            stamps.update(os.fsencode(relative) + b"\0-\0")
            continue
        settled = settled and max(info.st_mtime_ns, info.st_ctime_ns) <= settled_before
        stamps.update(os.fsencode(relative) + f"\0{_stamp(info)}\0".encode())
    stat_key = stamps.hexdigest() if settled else None
    if stat_key is not None and memo_folder is not None:
        remembered = _read_cache_file(memo_folder / f"tool-{stat_key[:32]}")
        if remembered is not None and re.fullmatch(rb"[0-9a-f]{64}", remembered):
            return ToolFingerprint(remembered.decode(), stat_key)
    hashed = _new_hash()
    hashed.update(versions)
    for relative, location in files:
        hashed.update(os.fsencode(relative) + b"\0")
        try:
            with open(location, "rb") as handle:
                hashed.update(handle.read())
        except OSError:
            hashed.update(b"\xff unreadable")
        hashed.update(b"\0")
    return ToolFingerprint(hashed.hexdigest(), stat_key)


@lru_cache(maxsize=1)
def _package_files() -> list[tuple[str, str]]:
    """(path relative to its root, path) of every file of the package and of rules/, sorted."""
    files: list[tuple[str, str]] = []
    package = Path(__file__).resolve().parent.parent
    roots = [package]
    rules = Path(str(rules_dir()))
    if package not in rules.parents:
        roots.append(rules)
    for root in roots:
        for folder, folders, names in os.walk(root):
            folders[:] = sorted(name for name in folders if name != "__pycache__")
            files.extend(
                (os.path.relpath(os.path.join(folder, name), root), os.path.join(folder, name))
                for name in sorted(names)
                if not name.endswith((".pyc", ".pyo"))
            )
    return files


def _libcst_version() -> bytes:
    """libcst's version file, found without importing libcst (a clean run never imports it)."""
    for entry in sys.path:
        candidate = os.path.join(entry or os.curdir, "libcst", "_version.py")
        try:
            with open(candidate, "rb") as handle:
                return handle.read(1 << 16)
        except OSError:
            continue
    try:
        import libcst

        return str(getattr(libcst, "__version__", "unknown")).encode()
    except ImportError:
        return b"libcst not found"


def _stamp(info: os.stat_result) -> Stamp:
    return (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode, info.st_ino)


# ---------------------------------------------------------------------------------------- reading
class Snapshot(NamedTuple):
    """What a file was when it was read: its stat, the time of the read, the hash of the bytes."""

    stamp: Stamp
    read_ns: int
    digest: str


def begin_read(path: str | os.PathLike[str]) -> tuple[int, Stamp | None]:
    """Before reading a file that will be cached: the time, then its stat."""
    read_ns = time.time_ns()
    try:
        return read_ns, _stamp(os.stat(path))
    except OSError:
        return read_ns, None


def finish_read(path: str | os.PathLike[str], begun: tuple[int, Stamp | None], data: bytes) -> Snapshot | None:
    """After the read: a snapshot when the file's stat did not change while it was read, else None
    (a file being written is not cached)."""
    read_ns, before = begun
    try:
        after = _stamp(os.stat(path))
    except OSError:
        return None
    if before is None or after != before or after[0] != len(data):
        return None
    return Snapshot(after, read_ns, digest(data))


def _read_cache_file(path: Path) -> bytes | None:
    """A cache file's bytes: a regular file (never a link, a FIFO or a device) of at most
    SHARD_LIMIT bytes; None for anything else."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        return None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or info.st_size > SHARD_LIMIT:
            return None
        chunks: list[bytes] = []
        remaining = SHARD_LIMIT + 1
        while remaining > 0:
            chunk = os.read(descriptor, min(remaining, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        return None if remaining <= 0 else b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(descriptor)


# ---------------------------------------------------------------------------------------- entries
# An entry, as stored: [size, mtime_ns, ctime_ns, mode, inode, read_ns, digest, parsed, findings, references]
# findings: [line, column, code, message, name or null];
# references: [name, line, column, documented, typing_only, call or null], call: [positional, [keywords], *args, **kwargs]
_ENTRY_FIELDS = 10
_CODE = re.compile(r"ESP\d{3}")


def _valid_head(entry: object) -> list[Any] | None:
    """The entry when its stat, read time, digest and flag have their types (its rows are checked
    as they are turned into findings)."""
    if type(entry) is not list or len(entry) != _ENTRY_FIELDS:
        return None
    size, mtime, ctime, mode, inode, read_ns, hashed, parsed = entry[:8]
    if not (
        type(size) is int
        and type(mtime) is int
        and type(ctime) is int
        and type(mode) is int
        and type(inode) is int
        and type(read_ns) is int
        and type(hashed) is str
        and type(parsed) is bool
    ):
        return None
    return entry


def _analysis(entry: list[Any], display: str) -> Analysis | None:
    """The entry's result, or None when a row has the wrong shape (null rows once printed
    `a.py:None:None: None None`)."""
    findings, references = entry[8], entry[9]
    if type(findings) is not list or type(references) is not list:
        return None
    analysis = Analysis(display, parsed=entry[7])
    code_shape = _CODE.fullmatch
    for row in findings:
        if type(row) is not list or len(row) != 5:
            return None
        line, column, code, message, name = row
        if not (
            type(line) is int
            and type(column) is int
            and line >= 1
            and column >= 1
            and type(code) is str
            and type(message) is str
            and (name is None or type(name) is str)
            and code_shape(code) is not None
        ):
            return None
        analysis.findings.append(Finding(display, line, column, code, message, name))
    for row in references:
        if type(row) is not list or len(row) != 6:
            return None
        name, line, column, documented, typing_only, call = row
        if not (type(name) is str and type(line) is int and type(column) is int and type(documented) is bool and type(typing_only) is bool):
            return None
        shape = _call_shape(call)
        if call is not None and shape is None:
            return None
        analysis.references.append(ReferenceRecord(name, line, column, documented, typing_only, shape))
    return analysis


def _call_shape(row: object) -> CallShapeTuple | None:
    """A stored call shape, or None when absent or malformed."""
    if type(row) is not list or len(row) != 4:
        return None
    positional, keywords, star_args, star_kwargs = row
    if not (
        type(positional) is int
        and type(keywords) is list
        and all(type(k) is str for k in keywords)
        and type(star_args) is bool
        and type(star_kwargs) is bool
    ):
        return None
    return positional, tuple(keywords), star_args, star_kwargs


def _stored_call(call: CallShapeTuple | None) -> list[Any] | None:
    return None if call is None else [call[0], list(call[1]), call[2], call[3]]


def _settled(entry: list[Any]) -> bool:
    """Whether the entry's stat vouches for its bytes: no rewrite after the read can keep times
    that lie this far before it."""
    return bool(max(entry[1], entry[2]) + RACY_WINDOW_NS <= entry[5])


# ---------------------------------------------------------------------------------------- shards
class _Shard:
    """One folder's cache file: its entries as read, and the entries this run changed.

    A slotted class, not a dataclass: a dataclass costs about 1 ms of import time on every
    pre-commit run."""

    __slots__ = ("entries", "folder", "location", "path", "updates")

    def __init__(self, folder: str, location: str, path: Path, entries: dict[str, Any]) -> None:
        self.folder = folder  # the folder's path relative to the project root (absolute outside it)
        self.location = location  # the folder on disk
        self.path = path  # the shard file
        self.entries = entries
        self.updates: dict[str, list[Any]] = {}


def _load_entries(path: Path, folder: str) -> dict[str, Any]:
    raw = _read_cache_file(path)
    if raw is None:
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError, MemoryError):
        return {}
    if type(data) is not dict or data.get("folder") != folder or type(data.get("files")) is not dict:
        return {}
    files: dict[str, Any] = data["files"]
    return files


class ResultCache:
    """Results by file, for one run key (see the module's docstring)."""

    def __init__(self, directory: Path, config: Config, with_references: bool) -> None:
        self.directory = directory
        self.root = _resolved(str(config.project_root))
        self.layout = directory / LAYOUT
        self.tool = _fingerprint(self.layout)
        run_key = digest(
            "\0".join((self.tool.value, config.fingerprint(), str(with_references), self.root)).encode(
                "utf-8", "surrogateescape"
            )
        )
        self.folder = self.layout / run_key[:32]
        self.trust_stat = os.environ.get(STAT_SHORTCUT_ENV, "1").strip() != "0"
        self._shards: dict[str, _Shard] = {}
        self._real_folders: dict[str, str] = {}

    # -------------------------------------------------------------------------------- lookups
    def lookup(self, path: StrPath, display: str, read: Callable[[StrPath], bytes]) -> Analysis | None:
        """The cached result of `path`, or None. `read` reads the file's bytes, should its stat
        not vouch for them."""
        try:
            info = os.lstat(path)
            linked = stat.S_ISLNK(info.st_mode)
            if linked:
                info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        shard, key = self._place(path, display, linked)
        entry = _valid_head(shard.entries.get(key))
        if entry is None:
            return None
        stamp = _stamp(info)
        if self.trust_stat and tuple(entry[:5]) == stamp and _settled(entry):
            return _analysis(entry, display)
        if entry[0] != stamp[0]:
            return None  # another size: other bytes
        begun = begin_read(path)
        try:
            data = read(path)
        except OSError:
            return None
        snapshot = finish_read(path, begun, data)
        if snapshot is None or snapshot.digest != entry[6]:
            return None
        analysis = _analysis(entry, display)
        if analysis is not None:
            shard.updates[key] = [*snapshot.stamp, snapshot.read_ns, *entry[6:]]  # stamped anew: a later stat can vouch
        return analysis

    def record(self, path: StrPath, display: str, snapshot: Snapshot | None, analysis: Analysis) -> None:
        """Remember `analysis` as the result of the bytes `snapshot` describes (written by `flush`)."""
        if snapshot is None:
            return
        try:
            linked = stat.S_ISLNK(os.lstat(path).st_mode)
        except OSError:
            return
        shard, key = self._place(path, display, linked)
        shard.updates[key] = [
            *snapshot.stamp,
            snapshot.read_ns,
            snapshot.digest,
            analysis.parsed,
            [[f.line, f.column, f.code, f.message, f.name] for f in analysis.findings],
            [
                [r.name, r.line, r.column, r.documented, r.typing_only, _stored_call(r.call)]
                for r in analysis.references
            ],
        ]

    def _place(self, path: StrPath, display: str, linked: bool) -> tuple[_Shard, str]:
        """The shard and key of a file: its real folder relative to the project root, its name."""
        if linked:
            real = _resolved(os.fspath(path))
            location, name = os.path.split(real)
        else:
            written, name = os.path.split(os.fspath(path))  # the folder as written: resolved once per run
            known = self._real_folders.get(written)
            location = known if known is not None else self._real_folders.setdefault(written, _resolved(written or os.curdir))
        shard = self._shards.get(location)
        if shard is None:
            folder = _relative(location, self.root)
            shard_path = self.folder / f"{digest(folder.encode('utf-8', 'surrogateescape'))[:32]}.json"
            shard = self._shards[location] = _Shard(folder, location, shard_path, _load_entries(shard_path, folder))
        return shard, f"{name}\0{display}"

    # -------------------------------------------------------------------------------- writing
    def flush(self) -> None:
        """Write the shards that changed, merged with what concurrent runs wrote meanwhile."""
        dirty = [shard for shard in self._shards.values() if shard.updates]
        memo = self.layout / f"tool-{self.tool.stat_key[:32]}" if self.tool.stat_key else None
        remember = memo is not None and not memo.exists() and (bool(dirty) or self.layout.is_dir())
        if not dirty and not remember:
            return
        try:
            new_run_key = self._prepare()
        except OSError:
            return  # a read-only or full disk only costs speed
        temporary = self.layout / "tmp"
        if remember and memo is not None:
            _write_atomically(memo, self.tool.value.encode(), temporary)
        for shard in dirty:
            merged = _load_entries(shard.path, shard.folder)
            try:
                present = set(os.listdir(shard.location))
            except OSError:
                present = set()
            files = {key: value for key, value in merged.items() if key.split("\0", 1)[0] in present}
            files.update(shard.updates)
            text = json.dumps({"folder": shard.folder, "files": files}, separators=(",", ":"))
            if len(text) <= SHARD_LIMIT:
                _write_atomically(shard.path, text.encode("utf-8", "surrogatepass"), temporary)
            shard.entries, shard.updates = files, {}
        _remove_stale_temporaries(temporary)
        if new_run_key:
            self._prune()

    def _prepare(self) -> bool:
        """Create the folders; True when this run key's folder is new."""
        if not self.directory.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            _write_atomically(self.directory / ".gitignore", b"# written by esper-lint\n*\n", self.directory)
            _write_atomically(
                self.directory / "CACHEDIR.TAG",
                b"Signature: 8a477f597d28d172789f06886806bc55\n# esper-lint's result cache: see https://bford.info/cachedir/\n",
                self.directory,
            )
        (self.layout / "tmp").mkdir(parents=True, exist_ok=True)
        try:
            self.folder.mkdir()
        except FileExistsError:
            return False
        return True

    def _prune(self) -> None:
        """Keep the most recently written run keys; drop the v1 layout."""
        import shutil

        shutil.rmtree(self.directory / "v1", ignore_errors=True)
        try:
            entries = [entry for entry in os.scandir(self.layout) if entry.name != "tmp"]
            keys = [entry for entry in entries if entry.is_dir(follow_symlinks=False)]
            memos = [entry for entry in entries if entry.name.startswith("tool-") and entry.is_file(follow_symlinks=False)]
            for group in (keys, memos):
                group.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime_ns, reverse=True)
        except OSError:
            return
        for entry in keys[KEEP_RUN_KEYS:]:
            if entry.path != os.fspath(self.folder):
                shutil.rmtree(entry.path, ignore_errors=True)
        for entry in memos[KEEP_RUN_KEYS:]:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)


def _write_atomically(target: Path, data: bytes, temporary_folder: Path) -> None:
    """Write `data` to a new temporary file and rename it onto `target`; on any failure (a full
    disk) the temporary file is removed and the target left as it was."""
    temporary = temporary_folder / f".{target.name}.{os.getpid()}.{os.urandom(6).hex()}.tmp"
    created = False
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
        created = True
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
        created = False
    except OSError:
        pass  # a read-only or full disk only costs speed
    finally:
        if created:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _remove_stale_temporaries(folder: Path) -> None:
    """Temporary files older than an hour were left by a killed run."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    limit = time.time() - STALE_TEMPORARY_S
    for entry in entries:
        try:
            if entry.name.endswith(".tmp") and entry.stat(follow_symlinks=False).st_mtime < limit:
                os.unlink(entry.path)
        except OSError:
            continue


def _resolved(path: str) -> str:
    """`os.path.realpath`, except that a symbolic link loop stays as written."""
    try:
        return os.path.realpath(path, strict=False)
    except (OSError, RuntimeError, ValueError):
        return os.path.abspath(path)


def _relative(location: str, root: str) -> str:
    if location == root:
        return "."
    prefix = root.rstrip(os.sep) + os.sep
    return location[len(prefix) :] if location.startswith(prefix) else location


def shard_files(directory: Path) -> Sequence[Path]:
    """The shard files under a cache folder (for tests and for inspecting a cache)."""
    layout = directory / LAYOUT
    return sorted(path for path in layout.glob("*/*.json") if path.parent.name != "tmp")
