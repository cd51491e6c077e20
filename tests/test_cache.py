"""The result cache (esper_lint/frontends/cache.py): the stat shortcut and when it may not vouch for a
file's bytes, the key (project root, relative path, esper-lint's own code), damaged or hostile
entries, failed writes and pruning."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.frontends import cache as cache_module
from esper_lint.frontends.cache import (
    KEEP_RUN_KEYS,
    RACY_WINDOW_NS,
    STAT_SHORTCUT_ENV,
    ResultCache,
    Snapshot,
    begin_read,
    digest,
    finish_read,
    shard_files,
)
from esper_lint.frontends.reading import read_regular_file
from esper_lint.frontends.runner import FileOutcome, run_files
from esper_lint.model import Analysis, Finding

ROOT = Path(__file__).resolve().parent.parent
BAD = "import torch\ntorch._foreach_norm(xs)\n"
GOOD = "import torch\nx = torch.ones(1)\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def never_read(path: Path) -> bytes:
    raise AssertionError(f"{path} was read although its stat vouches for it")


def reads_into(log: list[Path]) -> Callable[[Path], bytes]:
    def read(path: Path) -> bytes:
        log.append(path)
        return read_regular_file(path)

    return read


def codes(analysis: Analysis | None) -> list[str]:
    assert analysis is not None
    return [finding.code for finding in analysis.findings]


def fill(tmp_path: Path, files: list[Path], config: Config) -> None:
    outcomes = list(run_files(files, config, cache_dir=tmp_path / "cache"))
    assert all(outcome.error is None for outcome in outcomes)


def settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entries written now can vouch at once (the racy window is what the other tests exercise)."""
    monkeypatch.setattr(cache_module, "RACY_WINDOW_NS", 0)


# ---------------------------------------------------------------------------------------- the stat shortcut
def test_a_settled_entry_is_served_from_its_stat_without_reading_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    bad = write(tmp_path / "bad.py", BAD)
    fill(tmp_path, [bad], config)
    hit = ResultCache(tmp_path / "cache", config, with_references=False).lookup(bad, str(bad), never_read)
    assert codes(hit) == ["ESP101"]
    assert hit is not None and hit.findings[0].path == str(bad)


def test_an_entry_read_within_the_racy_window_is_checked_by_its_bytes(tmp_path: Path) -> None:
    """The classic hole: a same-size rewrite within the file system's timestamp granularity keeps size
    and times. An entry read less than RACY_WINDOW_NS after the file's last change cannot vouch."""
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    info = os.stat(target)
    # What a run saw had it read other bytes of the same size in the same clock tick as this write:
    other = GOOD.ljust(len(BAD) - 1) + "\n"
    assert len(other) == len(BAD)
    store = ResultCache(tmp_path / "cache", config, with_references=False)
    stamp = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_mode, info.st_ino)
    read_ns = max(info.st_mtime_ns, info.st_ctime_ns) + RACY_WINDOW_NS // 2
    store.record(target, str(target), Snapshot(stamp, read_ns, digest(other.encode())), Analysis("a.py"))
    store.flush()
    reads: list[Path] = []
    assert ResultCache(tmp_path / "cache", config, with_references=False).lookup(target, str(target), reads_into(reads)) is None
    assert reads == [target]
    # The same entry read long after the change would be trusted: the stat then vouches.
    store = ResultCache(tmp_path / "cache", config, with_references=False)
    store.record(target, str(target), Snapshot(stamp, read_ns + RACY_WINDOW_NS, digest(BAD.encode())), Analysis("a.py", parsed=True))
    store.flush()
    assert ResultCache(tmp_path / "cache", config, with_references=False).lookup(target, str(target), never_read) is not None


def test_the_stat_shortcut_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    bad = write(tmp_path / "bad.py", BAD)
    fill(tmp_path, [bad], config)
    monkeypatch.setenv(STAT_SHORTCUT_ENV, "0")
    reads: list[Path] = []
    hit = ResultCache(tmp_path / "cache", config, with_references=False).lookup(bad, str(bad), reads_into(reads))
    assert codes(hit) == ["ESP101"] and reads == [bad]


def test_a_same_size_rewrite_with_the_old_modification_time_is_never_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`cp -p`, `rsync -t` and `tar` restore modification times; the change time still moves."""
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    fill(tmp_path, [target], config)
    before = os.stat(target)
    time.sleep(0.05)  # past the clock tick of the first write: the change time moves
    rewritten = "import torch\ntorch.foreach_norm(xs)\n".ljust(len(BAD) - 1) + "\n"
    assert len(rewritten) == len(BAD)
    target.write_text(rewritten, encoding="utf-8")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert os.stat(target).st_mtime_ns == before.st_mtime_ns and os.stat(target).st_size == before.st_size
    assert ResultCache(tmp_path / "cache", config, with_references=False).lookup(target, str(target), read_regular_file) is None
    [outcome] = run_files([target], config, cache_dir=tmp_path / "cache")
    assert codes(outcome.analysis) == []


def test_rewrites_never_serve_an_old_result(tmp_path: Path) -> None:
    """Through the runner, with the real racy window: edits right after a run, of the same size or
    not, in place or by rename, always give the new file's findings."""
    config = Config(project_root=tmp_path)
    target = tmp_path / "a.py"
    for index, text in enumerate([BAD, GOOD.ljust(len(BAD) - 1) + "\n", BAD, GOOD, BAD, BAD.replace("xs", "ys")]):
        if index % 2:
            target.write_text(text, encoding="utf-8")
        else:
            write(tmp_path / "new.tmp", text).replace(target)
        [outcome] = run_files([target], config, cache_dir=tmp_path / "cache")
        assert codes(outcome.analysis) == (["ESP101"] if "_foreach" in text else []), index


def test_a_racy_entry_whose_bytes_match_is_served_and_stamped_anew(tmp_path: Path) -> None:
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    fill(tmp_path, [target], config)  # read within the window of the write
    [before] = json.loads(shard_files(tmp_path / "cache")[0].read_text())["files"].values()
    reads: list[Path] = []
    store = ResultCache(tmp_path / "cache", config, with_references=False)
    assert codes(store.lookup(target, str(target), reads_into(reads))) == ["ESP101"] and reads == [target]
    store.flush()
    [after] = json.loads(shard_files(tmp_path / "cache")[0].read_text())["files"].values()
    assert after[5] > before[5] and after[6:] == before[6:]  # read again, same bytes, same result


def test_a_file_changing_while_it_is_read_is_not_recorded(tmp_path: Path) -> None:
    target = write(tmp_path / "a.py", BAD)
    begun = begin_read(target)
    data = target.read_bytes()
    write(target, BAD + "# more\n")
    assert finish_read(target, begun, data) is None
    assert finish_read(target, begin_read(target), target.read_bytes()) is not None


# ---------------------------------------------------------------------------------------- the key
def test_the_key_holds_the_project_root(tmp_path: Path) -> None:
    """Per-file-ignores match paths relative to the project root, so two identical tables in two
    places give two results for one file, even through one shared cache folder."""
    table = '[tool.esper-lint]\nper-file-ignores = { "pkg/*" = ["ESP101"] }\n'
    write(tmp_path / "repo" / "pyproject.toml", table)
    write(tmp_path / "other" / "pyproject.toml", table)
    write(tmp_path / "repo" / "pkg" / "a.py", BAD)
    shared = str(tmp_path / "shared-cache")

    def check(config: str) -> int:
        command = [sys.executable, "-m", "esper_lint", "check", "--cache-dir", shared, "--config", config, "repo/pkg/a.py"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120).returncode

    assert check("repo/pyproject.toml") == 0
    assert check("other/pyproject.toml") == 1
    assert check("repo/pyproject.toml") == 0
    assert check("other/pyproject.toml") == 1


def test_moving_the_configuration_down_a_folder_is_a_new_key(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.esper-lint]\nper-file-ignores = { "pkg/*" = ["ESP101"] }\n')
    write(tmp_path / "pkg" / "a.py", BAD)

    def check() -> int:
        command = [sys.executable, "-m", "esper_lint", "check", "pkg/a.py"]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120).returncode

    assert check() == 0
    (tmp_path / "pyproject.toml").replace(tmp_path / "pkg" / "pyproject.toml")
    shutil.move(str(tmp_path / ".esper-lint-cache"), str(tmp_path / "pkg" / ".esper-lint-cache"))  # the same cache
    assert check() == 1  # relative to pkg/, a.py is not under pkg/*


def test_the_key_holds_esper_lints_own_code_and_data(tmp_path: Path) -> None:
    """A changed message with an unchanged version (an editable or git install) is a new key."""
    install = tmp_path / "install"
    shutil.copytree(ROOT / "esper_lint", install / "esper_lint", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "rules", install / "rules")
    project = tmp_path / "project"
    write(project / "a.py", BAD)
    env = {**os.environ, "PYTHONPATH": str(install)}

    def check() -> str:
        command = [sys.executable, "-m", "esper_lint", "check", "a.py"]
        result = subprocess.run(command, cwd=project, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 1, result.stderr
        return result.stdout

    assert "used without a documented fallback" in check()
    document = install / "rules" / "ESP101.md"
    document.write_text(document.read_text().replace("used without a documented fallback", "is undocumented"))
    assert "is undocumented" in check()


def test_the_tool_fingerprint_holds_the_python_and_libcst_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    cache_module._fingerprint.cache_clear()
    try:
        before = cache_module.tool_fingerprint()
        cache_module._fingerprint.cache_clear()
        monkeypatch.setattr(cache_module, "_libcst_version", lambda: b"__version__ = '0.0.1'")
        assert cache_module.tool_fingerprint() != before
        cache_module._fingerprint.cache_clear()
        monkeypatch.setattr(cache_module.sys, "version", sys.version + " (another build)")
        assert cache_module.tool_fingerprint() != before
    finally:
        cache_module._fingerprint.cache_clear()


def test_the_tool_fingerprint_is_remembered_under_settled_stats_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The content hash is the key either way (a fresh install and the same install seconds later
    share their cache); once every file is older than the racy window it is read from a memo."""
    cache_module._fingerprint.cache_clear()
    try:
        fresh = cache_module._fingerprint(tmp_path / "cache" / "v2")
        settle(monkeypatch)
        cache_module._fingerprint.cache_clear()
        settled = cache_module._fingerprint(tmp_path / "cache" / "v2")
        assert settled.value == fresh.value and settled.stat_key is not None
        config = Config(project_root=tmp_path)
        fill(tmp_path, [write(tmp_path / "a.py", BAD)], config)
        memo = tmp_path / "cache" / "v2" / f"tool-{settled.stat_key[:32]}"
        assert memo.read_text() == settled.value
        memo.write_text("f" * 64)  # what the memo says is what the next run uses: it is not recomputed
        cache_module._fingerprint.cache_clear()
        assert cache_module.tool_fingerprint(tmp_path / "cache" / "v2") == "f" * 64
        monkeypatch.setattr(cache_module, "RACY_WINDOW_NS", 10**18)  # files "just written": the memo is not used
        cache_module._fingerprint.cache_clear()
        assert cache_module.tool_fingerprint(tmp_path / "cache" / "v2") == settled.value
        memo.write_text("not a hash")
        monkeypatch.setattr(cache_module, "RACY_WINDOW_NS", 0)
        cache_module._fingerprint.cache_clear()
        assert cache_module.tool_fingerprint(tmp_path / "cache" / "v2") == settled.value
    finally:
        cache_module._fingerprint.cache_clear()


# ---------------------------------------------------------------------------------------- hostile entries
def damaged_entries() -> list[object]:
    good = [10, 1, 1, 33188, 1, 10**18, "0" * 64, True]
    return [
        None,
        "text",
        [1, 2, 3],
        [*good, [[None, None, None, None, None]], []],  # null rows printed `a.py:None:None: None None`
        [*good, [[1, 1, "ESP101", 5, None]], []],
        [*good, [[0, 1, "ESP101", "m", None]], []],
        [*good, [[True, 1, "ESP101", "m", None]], []],
        [*good, [[1, 1, "<script>", "m", None]], []],
        [*good, [], [["torch._x", 1, 1, "yes", False]]],
        [*good, {"findings": []}, []],
        [*good[:6], 7, True, [], []],
    ]


@pytest.mark.parametrize("entry", damaged_entries())
def test_an_entry_of_the_wrong_shape_is_a_miss_and_is_healed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entry: object) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    fill(tmp_path, [target], config)
    [shard] = shard_files(tmp_path / "cache")
    data = json.loads(shard.read_text())
    [key] = data["files"]
    stamp = data["files"][key][:6]
    if isinstance(entry, list) and len(entry) == 10:
        entry = [*stamp, *entry[6:]]  # the stat matches: only the shape is wrong
    data["files"][key] = entry
    shard.write_text(json.dumps(data))
    assert ResultCache(tmp_path / "cache", config, with_references=False).lookup(target, str(target), read_regular_file) is None
    [outcome] = run_files([target], config, cache_dir=tmp_path / "cache")
    assert codes(outcome.analysis) == ["ESP101"]
    assert ResultCache(tmp_path / "cache", config, with_references=False).lookup(target, str(target), never_read) is not None  # healed


@pytest.mark.parametrize(
    "content",
    [b"", b"{not json", b"[" * 100_000 + b"]" * 100_000, b'{"folder": 1, "files": {}}', b"[]", b'{"folder": ".", "files": []}'],
)
def test_a_damaged_shard_is_a_miss(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    fill(tmp_path, [target], config)
    [shard] = shard_files(tmp_path / "cache")
    shard.write_bytes(content)
    [outcome] = run_files([target], config, cache_dir=tmp_path / "cache")
    assert codes(outcome.analysis) == ["ESP101"]


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "folder", "huge"])
def test_a_shard_that_is_not_a_small_regular_file_is_a_miss_without_hanging(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    fill(tmp_path, [target], config)
    [shard] = shard_files(tmp_path / "cache")
    shard.unlink()
    if kind == "dev-zero":
        shard.symlink_to("/dev/zero")
    elif kind == "fifo":
        os.mkfifo(shard)
    elif kind == "folder":
        shard.mkdir()
    else:
        monkeypatch.setattr(cache_module, "SHARD_LIMIT", 1000)
        shard.write_bytes(b" " * 2000)
    outcome: list[FileOutcome] = []
    worker = threading.Thread(target=lambda: outcome.extend(run_files([target], config, cache_dir=tmp_path / "cache")), daemon=True)
    worker.start()
    worker.join(60)
    assert not worker.is_alive(), "the run hung on the shard"
    assert [codes(o.analysis) for o in outcome] == [["ESP101"]]


# ---------------------------------------------------------------------------------------- writing and bounds
def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A full disk: the write fails half-way; nothing is left behind, and the run's result stands."""
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)

    def full(descriptor: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache_module.os, "write", full)
    [outcome] = run_files([target], config, cache_dir=tmp_path / "cache")
    monkeypatch.undo()
    assert codes(outcome.analysis) == ["ESP101"]
    leftovers = [path for path in (tmp_path / "cache").rglob("*") if path.is_file() and path.name.endswith(".tmp")]
    assert leftovers == []
    assert shard_files(tmp_path / "cache") == []


def test_a_read_only_cache_only_costs_speed(tmp_path: Path) -> None:
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    (tmp_path / "cache").write_text("a file where the folder should be")
    [outcome] = run_files([target], config, cache_dir=tmp_path / "cache")
    assert codes(outcome.analysis) == ["ESP101"]


def test_stale_temporary_files_and_old_run_keys_are_pruned(tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    layout = cache_dir / "v2"
    for index in range(KEEP_RUN_KEYS + 3):
        old = layout / f"{index:032x}"
        write(old / "shard.json", "{}")
        stamp = time.time() - 3600 * (index + 1)
        os.utime(old, (stamp, stamp))
    write(cache_dir / "v1" / "ab" / "tmpx.tmp", "")  # the previous layout, with a full disk's leftover
    stale = write(layout / "tmp" / ".x.json.1.abcdef.tmp", "")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = write(layout / "tmp" / ".y.json.1.abcdef.tmp", "")  # perhaps a concurrent run's
    config = Config(project_root=tmp_path)
    target = write(tmp_path / "a.py", BAD)
    list(run_files([target], config, cache_dir=cache_dir))
    keys = [path for path in layout.iterdir() if path.is_dir() and path.name != "tmp"]
    assert len(keys) == KEEP_RUN_KEYS
    assert ResultCache(cache_dir, config, with_references=False).folder in keys
    assert not (cache_dir / "v1").exists()
    assert not stale.exists() and fresh.exists()


def test_a_shard_keeps_only_files_that_exist_and_merges_concurrent_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    first, second, gone = (write(tmp_path / name, BAD) for name in ("a.py", "b.py", "c.py"))
    fill(tmp_path, [gone], config)
    gone.unlink()
    one = ResultCache(tmp_path / "cache", config, with_references=False)
    other = ResultCache(tmp_path / "cache", config, with_references=False)
    for store, path in ((one, first), (other, second)):
        snapshot = finish_read(path, begin_read(path), path.read_bytes())
        store.record(path, str(path), snapshot, Analysis(str(path), [Finding(str(path), 2, 1, "ESP101", "m", "torch._x")]))
    one.flush()
    other.flush()
    [shard] = shard_files(tmp_path / "cache")
    assert sorted(key.split("\0")[0] for key in json.loads(shard.read_text())["files"]) == ["a.py", "b.py"]


def test_symbolic_links_are_cached_under_their_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settle(monkeypatch)
    config = Config(project_root=tmp_path)
    real = write(tmp_path / "real" / "a.py", BAD)
    link = tmp_path / "link.py"
    link.symlink_to(real)
    fill(tmp_path, [link], config)
    assert codes(ResultCache(tmp_path / "cache", config, with_references=False).lookup(link, str(link), never_read)) == ["ESP101"]
    write(tmp_path / "other.py", GOOD)
    link.unlink()
    link.symlink_to(tmp_path / "other.py")
    assert ResultCache(tmp_path / "cache", config, with_references=False).lookup(link, str(link), read_regular_file) is None


def test_reading_a_few_files_first_gives_what_the_full_path_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner answers a short list of files that fail the pre-check itself, without the cache
    or a worker (frontends/runner.py): the outcomes must equal those of the full path, which a
    long list takes, for clean files, a private use, a noqa-only file under ESP002, a marker-only
    file and a file that cannot be read."""
    from esper_lint.frontends import runner

    files = {
        "clean.py": "import os\nx = os.sep\n",
        "use.py": "import torch\n\ntorch._foreach_norm(g)\n",
        "noqa.py": "x = 1  # noqa: ESP101\n",
        "marker.py": "# Private API, since PyTorch 2.0, fallback: f()\nx = 1\n",
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    paths = [tmp_path / name for name in files] + [tmp_path / "missing.py"]
    config = Config(select=("ESP", "ESP002"), project_root=tmp_path)

    def outcomes() -> list[tuple[Path, object, str | None]]:
        return sorted(
            ((o.path, None if o.analysis is None else (o.analysis.findings, o.analysis.references), o.error)
             for o in run_files(paths, config, jobs=1, with_references=True)),
            key=lambda row: str(row[0]),
        )

    first = outcomes()
    monkeypatch.setattr(runner, "PRECHECK_FIRST_UP_TO", 0)
    assert outcomes() == first
    by_name = {path.name: (analysis, error) for path, analysis, error in first}
    assert by_name["clean.py"] == (([], []), None)
    assert by_name["use.py"][0] != ([], []) and by_name["noqa.py"][0] != ([], [])
    assert by_name["missing.py"][0] is None and by_name["missing.py"][1] is not None
