"""`--format sarif` and `--format github`, run through the real CLI.

SARIF output is validated against the official OASIS SARIF 2.1.0 schema vendored in tests/data
(see tests/data/README.md), then checked for what code-scanning UIs rely on beyond the schema.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote, unquote

import pytest

import esper_lint
from esper_lint.frontends.output import github_report
from esper_lint.model import Finding

jsonschema = pytest.importorskip("jsonschema", reason="the SARIF tests need jsonschema (the `test` extra)")

SCHEMA_PATH = Path(__file__).resolve().parent / "data" / "sarif-schema-2.1.0.json"
# RFC 3986 URI-reference characters: unreserved, reserved and percent escapes; nothing else.
URI_REFERENCE_CHARS = re.compile(r"^(?:[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$")
GITHUB_LINE = re.compile(r"^::error file=(?P<file>[^,]*),line=(?P<line>\d+),col=(?P<col>\d+),title=(?P<title>[^:]*)::(?P<message>.*)$")

PYPROJECT = """\
[project]
name = "demo"

[tool.esper-lint]

[tool.esper-lint.private-apis."torch._nowhere"]
since = "1.11"
fallback = "None"
"""

FILES = {
    # ESP101 in a subfolder
    "pkg/sub/mod.py": "import torch\n\n\nnorms = torch._foreach_norm(xs)\n",
    # ESP102 (block without version or fallback) and ESP103 (valid block on a statement with no private API)
    "my file.py": (
        "import torch\n"
        "# NOTE: Private API, used on purpose\n"
        "fn = torch._foreach_norm\n"
        "# Private API, stable since PyTorch 1.11, fallback: None\n"
        "x = 1\n"
    ),
    # ESP001: a syntax error in a file that references torch
    "broken.py": "import torch\ndef f(:\n    torch._x\n",
    # a non-ASCII private name (so a non-ASCII message) after a non-ASCII identifier (columns in code points)
    "ünï/naïve.py": "import torch\nñ = torch._naïve_op(1)\n",
}


def write_project(root: Path) -> Path:
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    for relative, text in FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "esper_lint", *args], cwd=cwd, capture_output=True, timeout=300
    )
    # SARIF is UTF-8 JSON by definition; decode strictly so a wrong encoding fails here.
    return subprocess.CompletedProcess(
        result.args, result.returncode, result.stdout.decode("utf-8"), result.stderr.decode("utf-8", "replace")
    )


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    data = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert data["id"].endswith("/sarif-schema-2.1.0.json") and "2.1.0" in data["title"]
    jsonschema.Draft4Validator.check_schema(data)
    return data


def validate(log: dict[str, Any], schema: dict[str, Any]) -> None:
    """Validate with the schema's own draft (04), checking `uri`/`uri-reference` formats where the
    installed jsonschema can (it needs rfc3986-validator or rfc3987); URIs are checked below anyway."""
    validator = jsonschema.Draft4Validator(schema, format_checker=jsonschema.FormatChecker())
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])


def check_semantics(log: dict[str, Any], rows: list[dict[str, Any]], root: Path) -> list[dict[str, Any]]:
    """What code scanning relies on beyond the schema; `rows` is the `--format json` output of the same run."""
    assert log["version"] == "2.1.0"
    assert len(log["runs"]) == 1
    run_ = log["runs"][0]
    driver = run_["tool"]["driver"]
    assert driver["name"] == "esper-lint"
    assert driver["version"] == esper_lint.__version__
    rule_ids = [rule["id"] for rule in driver["rules"]]
    assert len(rule_ids) == len(set(rule_ids))
    assert {"ESP001", "ESP101", "ESP102", "ESP103", "ESP203"} <= set(rule_ids)
    assert run_["columnKind"] == "unicodeCodePoints"
    results = run_["results"]
    assert len(results) == len(rows)
    for result, row in zip(results, rows, strict=True):
        assert result["ruleId"] == row["code"]
        assert result["ruleId"] in rule_ids
        assert driver["rules"][result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["message"]["text"] == row["message"]
        assert result["level"] == "error"
        (location,) = result["locations"]
        physical = location["physicalLocation"]
        assert physical["region"] == {"startLine": row["line"], "startColumn": row["column"]}
        artifact = physical["artifactLocation"]
        assert artifact["uriBaseId"] == "%SRCROOT%"
        assert URI_REFERENCE_CHARS.match(artifact["uri"]), artifact["uri"]
        assert not artifact["uri"].startswith("/")
        assert artifact["uri"] == quote(PurePath(row["path"]).as_posix())
        assert (root / unquote(artifact["uri"])).is_file()
        if row["name"] is not None:
            assert result["properties"]["privateName"] == row["name"]
    return results


def test_vendored_schema_is_the_official_sarif_2_1_0(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["id"] == "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
    assert schema["title"] == "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema"
    assert schema["required"] == ["version", "runs"]


def test_check_sarif_is_schema_valid_and_matches_text_output(tmp_path: Path, schema: dict[str, Any]) -> None:
    root = write_project(tmp_path)
    sarif = run("check", "--no-cache", "--format", "sarif", cwd=root)
    assert sarif.returncode == 1, sarif.stderr
    assert "Traceback" not in sarif.stderr
    log = json.loads(sarif.stdout)
    validate(log, schema)

    rows = json.loads(run("check", "--no-cache", "--format", "json", cwd=root).stdout)
    results = check_semantics(log, rows, root)

    # The same positions as the flake8-style text format.
    text = run("check", "--no-cache", cwd=root).stdout.splitlines()
    from_sarif = [
        f"{unquote(r['locations'][0]['physicalLocation']['artifactLocation']['uri'])}:"
        f"{r['locations'][0]['physicalLocation']['region']['startLine']}:"
        f"{r['locations'][0]['physicalLocation']['region']['startColumn']}: {r['ruleId']} {r['message']['text']}"
        for r in results
    ]
    assert [line.replace("\\", "/") for line in text] == from_sarif

    by_uri = {(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], r["ruleId"]) for r in results}
    assert ("pkg/sub/mod.py", "ESP101") in by_uri
    assert ("my%20file.py", "ESP102") in by_uri
    assert ("my%20file.py", "ESP103") in by_uri
    assert ("broken.py", "ESP001") in by_uri
    assert ("pyproject.toml", "ESP103") in by_uri  # the stale central declaration, repository-relative
    naive = [r for r in results if r.get("properties", {}).get("privateName") == "torch._naïve_op"]
    assert len(naive) == 1
    assert naive[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == quote("ünï/naïve.py")
    assert naive[0]["locations"][0]["physicalLocation"]["region"] == {"startLine": 2, "startColumn": 5}
    assert "torch._naïve_op" in naive[0]["message"]["text"]


def test_clean_project_gives_a_valid_log_with_no_results(tmp_path: Path, schema: dict[str, Any]) -> None:
    (tmp_path / "ok.py").write_text("import torch\nx = torch.ones(1)\n", encoding="utf-8")
    result = run("check", "--no-cache", "--format", "sarif", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = json.loads(result.stdout)
    validate(log, schema)
    assert log["runs"][0]["results"] == []


def test_verify_sarif_is_schema_valid(tmp_path: Path, schema: dict[str, Any]) -> None:
    pytest.importorskip("torch", reason="verify needs torch installed")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "old code.py").write_text("import torch\nfrom torch._six import inf\n", encoding="utf-8")
    result = run("verify", "--no-cache", "--format", "sarif", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    log = json.loads(result.stdout)
    validate(log, schema)
    rows = json.loads(run("verify", "--no-cache", "--format", "json", cwd=tmp_path).stdout)
    (only,) = check_semantics(log, rows, tmp_path)
    assert only["ruleId"] == "ESP203"
    assert only["properties"]["privateName"] == "torch._six.inf"
    assert only["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "pkg/old%20code.py"
    assert only["locations"][0]["physicalLocation"]["region"] == {"startLine": 2, "startColumn": 24}


def unescape_data(value: str) -> str:
    return value.replace("%0A", "\n").replace("%0D", "\r").replace("%25", "%")


def unescape_property(value: str) -> str:
    return unescape_data(value.replace("%3A", ":").replace("%2C", ","))


def test_check_github_annotations(tmp_path: Path) -> None:
    root = write_project(tmp_path)
    result = run("check", "--no-cache", "--format", "github", cwd=root)
    assert result.returncode == 1, result.stderr
    rows = json.loads(run("check", "--no-cache", "--format", "json", cwd=root).stdout)
    lines = result.stdout.splitlines()
    assert len(lines) == len(rows)
    for line, row in zip(lines, rows, strict=True):
        match = GITHUB_LINE.match(line)
        assert match, line
        assert unescape_property(match["file"]) == PurePath(row["path"]).as_posix()
        assert (int(match["line"]), int(match["col"])) == (row["line"], row["column"])
        assert match["title"] == row["code"]
        assert unescape_data(match["message"]) == f"{row['code']} {row['message']}"
    assert any(line.startswith("::error file=my file.py,line=3,col=6,title=ESP102::ESP102 ") for line in lines)
    assert any(line.startswith("::error file=pkg/sub/mod.py,line=4,col=9,title=ESP101::") for line in lines)


def test_github_escapes_properties_and_data() -> None:
    finding = Finding("odd,dir:x%/a\r\nb.py", 3, 7, "ESP101", "first line\nsecond, 100%: done\r", "torch._x")
    assert github_report([finding]) == (
        "::error file=odd%2Cdir%3Ax%25/a%0D%0Ab.py,line=3,col=7,title=ESP101"
        "::ESP101 first line%0Asecond, 100%25: done%0D\n"
    )
    assert github_report([]) == ""


def test_github_uses_forward_slashes() -> None:
    finding = Finding(str(PurePath("pkg", "mod.py")), 1, 1, "ESP101", "m", None)
    assert github_report([finding]).startswith("::error file=pkg/mod.py,line=1,col=1,title=ESP101::")
