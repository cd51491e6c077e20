"""The .gitignore translation against pathspec's GitIgnoreSpec (a maintained implementation of
git's rules, installed with mypy in the test extra), on patterns of every kind and many paths."""

from __future__ import annotations

import itertools

import pytest

from esper_lint.frontends.gitignore import GitIgnoreSpec

pathspec = pytest.importorskip("pathspec")

PATTERNS = [
    "out/", "*.log", "!keep.log", "/top.py", "a/**/b.py", "**/gen", "build/**", "doc/*.txt", "x?z.py", "[abc]d.py",
    "[!abc]e.py", "dir", "deep/dir/", "**/cache/**", "*.py[co]", "\\#literal", "\\!bang", "trailing\\ ", "name  ", "#comment",
    "", "a*/b", "**", "*/x.py", "/rooted/", "!out/keep/", "lit[.py",
]
PATHS = [
    "out/", "out/x.py", "x/out/", "keep.log", "z.log", "sub/z.log", "top.py", "sub/top.py", "a/x/y/b.py", "a/b.py", "gen/",
    "q/gen/", "q/gen", "build/", "build/x.py", "build/sub/y.py", "doc/a.txt", "doc/sub/a.txt", "xyz.py", "x/z.py", "ad.py",
    "dd.py", "ae.py", "de.py", "dir", "dir/", "q/dir/", "deep/dir/", "deep/dir", "cache/", "q/cache/x.py", "f.pyc", "f.py",
    "#literal", "!bang", "trailing ", "name", "ab/b", "a/c/b", "q/x.py", "x.py", "rooted/", "q/rooted/", "lit[.py", "out/keep/",
]


@pytest.mark.parametrize("size", [1, 2, 3])
def test_the_translation_decides_files_as_pathspec_does(size: int) -> None:
    """Files only: for a folder, `dir/**` matches the folder itself in pathspec and not in git; the
    files are ignored either way. A `!` pattern cannot re-include a file whose folder is ignored in
    git (gitignore(5)), where pathspec re-includes it: those cases are the next test's."""
    compared = 0
    for patterns in itertools.islice(itertools.permutations(PATTERNS, size), 3000):
        ours = GitIgnoreSpec.from_lines(patterns)
        theirs = pathspec.GitIgnoreSpec.from_lines(patterns)
        negation = any(p.startswith("!") for p in patterns)
        for path in PATHS:
            if path.endswith("/") or (negation and _folder_ignored(ours, path)):
                continue
            assert ours.decide(path) == theirs.check_file(path).include, (patterns, path)
            compared += 1
    assert compared > 500


def _folder_ignored(spec: GitIgnoreSpec, path: str) -> bool:
    parts = path.split("/")
    return any(spec.decide("/".join(parts[:end]) + "/") for end in range(1, len(parts)))


def test_git_s_own_rules_where_pathspec_differs() -> None:
    spec = GitIgnoreSpec.from_lines(["out/", "!out/keep.py", "build/**", "!build/keep.py"])
    assert spec.decide("out/keep.py") is True  # its folder is ignored: it cannot come back
    assert spec.decide("build/") is None  # `build/**` is what is inside build, not build itself
    assert spec.decide("build/x.py") is True and spec.decide("build/keep.py") is False
    assert GitIgnoreSpec.from_lines(["lit[.py"]).decide("lit[.py") is None  # an unclosed bracket matches nothing
