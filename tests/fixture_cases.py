"""Read the fixtures: inline `# expect:` annotations and `# esper-lint-config:` lines.

An annotation lists the findings expected on its line, separated by spaces:

    torch._foreach_norm(xs)  # expect: ESP101:5[torch._foreach_norm]
    # Private API ...  # expect: ESP103:5

Each item is `CODE`, then optionally `:COLUMN` (1-based, in characters, as `esper-lint check` and
flake8 print it), then `[name]` when the finding names an API. A column, when written, must match
exactly; without one any column on the line does. Anything else after `# expect:`, or an
`expect` comment not written exactly so, is an error: a typo must fail loudly, not expect nothing.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from esper_lint.config import Config, config_from_table
from esper_lint.data import tomllib

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
FIX_FIXTURES = FIXTURES / "fix"  # whole-file fixer fixtures (tests/test_fix.py), no inline verdicts
_EXPECT = re.compile(r"[ \t]*# expect: (?P<codes>.*)$")
_EXPECT_LIKE = re.compile(r"#\s*expect\b", re.I)  # what a mistyped annotation still looks like
_ITEM = re.compile(r"(?P<code>ESP\d{3})(?::(?P<column>[1-9]\d*))?(?:\[(?P<name>[^\[\]\s]+)\])?")
_CONFIG = re.compile(r"^# esper-lint-config: (.*)$", re.M)


class FixtureError(ValueError):
    """A malformed `# expect:` annotation."""


class Expected(NamedTuple):
    line: int
    column: int | None  # None: any column on the line
    code: str
    name: str | None


class Got(NamedTuple):
    line: int
    column: int
    code: str
    name: str | None

    def written(self) -> str:
        """How an annotation pins this finding."""
        return f"{self.code}:{self.column}" + (f"[{self.name}]" if self.name else "")


@dataclass(frozen=True)
class FixtureCase:
    path: Path
    source: str  # the file with the `# expect:` annotations removed
    expected: Counter[Expected]
    config: Config


def parse_expectations(codes: str, number: int, where: str = "<fixture>") -> list[Expected]:
    items = codes.split()
    if not items:
        raise FixtureError(f"{where}:{number}: `# expect:` names no finding")
    parsed = []
    for item in items:
        match = _ITEM.fullmatch(item)
        if match is None:
            raise FixtureError(
                f"{where}:{number}: malformed expectation {item!r}: write CODE, CODE:COLUMN, CODE[name] or CODE:COLUMN[name]"
            )
        column = match.group("column")
        parsed.append(Expected(number, int(column) if column else None, match.group("code"), match.group("name")))
    return parsed


def load_case(path: Path) -> FixtureCase:
    text = path.read_text(encoding="utf-8")
    expected: Counter[Expected] = Counter()
    lines = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        body = line.rstrip("\r\n")
        match = _EXPECT.search(body)
        if match:
            expected.update(parse_expectations(match.group("codes"), number, str(path)))
            if _EXPECT_LIKE.search(body[: match.start()]) or _EXPECT_LIKE.search(match.group("codes")):
                raise FixtureError(f"{path}:{number}: two `expect` comments on one line: write one list")
            line = line[: match.start()] + line[len(body) :]
        elif _EXPECT_LIKE.search(body):
            raise FixtureError(f"{path}:{number}: an `expect` comment not written `# expect: CODE...`: {body.strip()!r}")
        lines.append(line)
    table = tomllib.loads("\n".join(_CONFIG.findall(text)))
    config = config_from_table(table, str(path))
    return FixtureCase(path, "".join(lines), expected, config)


def mismatches(expected: Counter[Expected], got: Iterable[Got]) -> tuple[list[Expected], list[Got]]:
    """(expectations not met, findings not expected). A pinned column must match exactly; the
    pinned expectations are matched first, so an unpinned one takes any finding left on its line."""
    left = Counter(got)
    missing: list[Expected] = []
    for item, count in sorted(expected.items(), key=lambda kv: kv[0].column is None):
        for _ in range(count):
            if item.column is not None:
                key = Got(*item)
                if left[key] > 0:
                    left[key] -= 1
                    continue
            else:
                key = next((g for g in sorted(left) if left[g] > 0 and (g.line, g.code, g.name) == (item.line, item.code, item.name)), None)
                if key is not None:
                    left[key] -= 1
                    continue
            missing.append(item)
    return missing, sorted(left.elements())


def fixture_paths() -> list[Path]:
    """The fixtures with inline verdicts (not the bundled example, not the whole-file fix pairs)."""
    return sorted(p for p in FIXTURES.rglob("*.py") if "example" not in p.parts and FIX_FIXTURES not in p.parents)


def fix_fixture_pairs() -> list[tuple[Path, Path]]:
    """(input, expected output of the fixer) for every `NAME.py` beside a `NAME.fixed.py` in fixtures/fix/."""
    inputs = sorted(p for p in FIX_FIXTURES.glob("*.py") if not p.name.endswith(".fixed.py"))
    return [(p, p.with_name(p.stem + ".fixed.py")) for p in inputs]


def config_lines(raw: bytes) -> str:
    """The TOML of a file's `# esper-lint-config:` lines, read from its bytes (fix fixtures need not be UTF-8)."""
    return "\n".join(line.decode("ascii") for line in re.findall(rb"^# esper-lint-config: (.*?)\r?$", raw, re.M))


def config_of(raw: bytes, where: str) -> Config:
    return config_from_table(tomllib.loads(config_lines(raw)), where)
