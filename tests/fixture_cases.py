"""Read the fixtures: inline `# expect: CODE[name]` annotations and `# esper-lint-config:` lines."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from esper_lint.data import tomllib
from esper_lint.config import Config, config_from_table

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
_EXPECT = re.compile(r"[ \t]*# expect: (?P<codes>.*)$")
_EXPECTED_CODE = re.compile(r"(ESP\d{3})(?:\[([^\]]+)\])?")
_CONFIG = re.compile(r"^# esper-lint-config: (.*)$", re.M)


@dataclass(frozen=True)
class FixtureCase:
    path: Path
    source: str  # the file with the `# expect:` annotations removed
    expected: Counter[tuple[int, str, str | None]]
    config: Config


def load_case(path: Path) -> FixtureCase:
    text = path.read_text(encoding="utf-8")
    expected: Counter[tuple[int, str, str | None]] = Counter()
    lines = []
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        match = _EXPECT.search(line.rstrip("\r\n"))
        if match:
            for code, name in _EXPECTED_CODE.findall(match.group("codes")):
                expected[(number, code, name or None)] += 1
            line = line[: match.start()] + line[len(line.rstrip("\r\n")) :]
        lines.append(line)
    table = tomllib.loads("\n".join(_CONFIG.findall(text)))
    config = config_from_table(table, str(path))
    return FixtureCase(path, "".join(lines), expected, config)


def fixture_paths() -> list[Path]:
    return sorted(p for p in FIXTURES.rglob("*.py") if "example" not in p.parts)
