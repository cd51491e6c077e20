"""esper_lint/frontends/paths.py spells paths as pathlib does: displayed paths and messages must not change."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from esper_lint.frontends import paths

SPELLINGS = [
    "", ".", "./", "a.py", "./a.py", "a/./b.py", "a//b.py", "dir/", "dir//", "./dir/./", "..", "../a", "a/..",
    "a/../b", ".hidden.py", "a/.hidden/b.py", "/", "//", "///", "//a", "///a/b", "/a/b/", "/a/./b", "-",
    "name with spaces.py", "ünïcode.py", "x=y.py", "a/b/c/d.pyi", "...", ".../a", "a/.",
]


@pytest.mark.parametrize("text", SPELLINGS)
def test_each_helper_answers_as_pathlib(text: str) -> None:
    path = Path(text)
    assert paths.normalized(text) == str(path)
    assert paths.normalized(path) == str(path)
    assert paths.parent(text) == str(path.parent)
    assert paths.parents(text) == [str(p) for p in path.parents]
    assert paths.name(text) == path.name
    assert paths.join(text, "x.py") == str(path / "x.py")
    assert paths.absolute(text) == str(path.absolute())


def test_resolved_is_pathlibs_resolve_and_a_loop_stays_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    for text in ("link", "./link/", "real/x.py", "link/../real", "missing/y", str(tmp_path / "link")):
        assert paths.resolved(text) == str(Path(text).resolve())
    try:
        expected = str(Path("loop/x").resolve())
    except RuntimeError:  # Python before 3.13
        expected = str(Path("loop/x").absolute())
    assert paths.resolved("loop/x") == expected
    assert os.path.isabs(paths.resolved("loop/x"))
