"""What a package index page, a new user and a GitHub workflow see: the README's example and its
output, links that work off GitHub, the metadata (one version, the licence, the URLs), flake8 as
an extra, and the composite action's shape and commands."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import esper_lint
from esper_lint.data import tomllib
from esper_lint.frontends.output import INFORMATION_URI

REPOSITORY = Path(__file__).resolve().parent.parent
README = (REPOSITORY / "README.md").read_text(encoding="utf-8")
PYPROJECT = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))
TIMEOUT = 300


def _block_after(marker: str, language: str) -> str:
    start = README.index(marker)
    match = re.compile(rf"```{language}\n(.*?)```\n", re.DOTALL).search(README, start)
    assert match is not None, f"no ```{language} block after {marker!r}"
    return match.group(1)


def _esper_lint(arguments: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "esper_lint", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=environment,
        timeout=TIMEOUT,
        check=False,
    )


# ---------------------------------------------------------------------------- the README
def test_the_readme_sample_output_is_what_its_example_prints() -> None:
    """The first set-up command ends in `.venv/bin/esper-lint check fixtures/example`: run that
    (with this checkout's esper-lint) and compare the output with the README's block, byte for byte."""
    command = _block_after("## Set-up: two commands", "sh").strip()
    last = shlex.split(command.split("&&")[-1])
    assert Path(last[0]).name == "esper-lint", command
    completed = _esper_lint(last[1:], cwd=REPOSITORY)
    assert completed.returncode == 1, completed.stderr  # "exit status 1 means findings"
    assert completed.stdout == _block_after("Sample output of the first command:", "text")
    assert "ESP201" in completed.stdout  # the seed's "since 1.9", which the README once left out


def test_readme_links_work_on_a_package_index_page() -> None:
    """A package index shows the README without the repository: every link is absolute (or an
    anchor within the page), and repository links point into the one repository the metadata names."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets
    relative = [target for target in targets if not target.startswith(("https://", "http://", "mailto:", "#"))]
    assert relative == []
    repository = PYPROJECT["project"]["urls"]["Repository"]
    assert repository == INFORMATION_URI  # the SARIF log's informationUri and rule links name it too
    own = [target for target in targets if "esper-lint/esper-lint" in target]
    assert own and all(target.startswith(repository + "/") for target in own)
    for target in own:  # a linked file of this repository exists in it
        match = re.match(rf"{re.escape(repository)}/(?:blob|tree)/main/([^#]+)", target)
        assert match is not None, target
        assert (REPOSITORY / match.group(1)).exists(), target


# ---------------------------------------------------------------------------- metadata
def test_the_version_is_written_once() -> None:
    project = PYPROJECT["project"]
    assert "version" not in project and "version" in project["dynamic"]
    source = PYPROJECT["tool"]["hatch"]["version"]["path"]
    assert source == "esper_lint/__init__.py"
    written = re.findall(r'^__version__ = "([^"]+)"$', (REPOSITORY / source).read_text(encoding="utf-8"), re.MULTILINE)
    assert written == [esper_lint.__version__]
    assert f"## [{esper_lint.__version__}]" in (REPOSITORY / "CHANGELOG.md").read_text(encoding="utf-8")


def test_licence_urls_and_typing() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    licence = (REPOSITORY / "LICENSE").read_text(encoding="utf-8")
    assert licence.startswith("MIT License\n") and "Permission is hereby granted, free of charge" in licence
    urls = PYPROJECT["project"]["urls"]
    assert {"Homepage", "Repository", "Issues", "Changelog"} <= set(urls)
    assert all(url.startswith("https://") for url in urls.values())
    # esper_lint.testing is a module of the package, whose py.typed marker covers it (PEP 561); the
    # wheel ships the package folder whole.
    assert (REPOSITORY / "esper_lint" / "py.typed").is_file()
    assert PYPROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["esper_lint"]


def test_flake8_is_an_extra_and_the_command_line_runs_without_it(tmp_path: Path) -> None:
    project = PYPROJECT["project"]
    assert not any(re.match(r"flake8\b", requirement) for requirement in project["dependencies"])
    assert project["optional-dependencies"]["flake8"] == ["flake8>=6.0"]
    assert project["entry-points"]["flake8.extension"] == {"ESP": "esper_lint.frontends.flake8_plugin:EsperLintChecker"}
    (tmp_path / "module.py").write_text("import torch\ntorch._foreach_norm(x)\n", encoding="utf-8")
    # A Python where `import flake8` fails, as where it is not installed; the run must not notice.
    blocker = (
        "import sys\n"
        "class NoFlake8:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'flake8' or name.startswith('flake8.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, NoFlake8())\n"
        "from esper_lint.frontends.cli import main\n"
        "status = main(sys.argv[1:])\n"
        "import esper_lint.flake8_plugin\n"  # what flake8's entry point loads imports without flake8
        "assert not any(n == 'flake8' or n.startswith('flake8.') for n in sys.modules), 'flake8 was imported'\n"
        "sys.exit(status)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", blocker, "check", "--no-cache", "module.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        timeout=TIMEOUT,
        check=False,
    )
    assert completed.returncode == 1, completed.stderr
    assert completed.stdout.startswith("module.py:2:1: ESP101 ")


# ---------------------------------------------------------------------------- action.yml
def _action() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml", reason="PyYAML reads action.yml (the test extra installs it)")
    loaded = yaml.safe_load((REPOSITORY / "action.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_action_is_a_composite_action_of_the_documented_shape() -> None:
    action = _action()
    assert action["name"] == "esper-lint" and action["description"]
    inputs = action["inputs"]
    assert set(inputs) == {"paths", "args", "working-directory", "python-version", "sarif", "sarif-category"}
    assert all(spec["description"] and spec["required"] is False and isinstance(spec["default"], str) for spec in inputs.values())
    runs = action["runs"]
    assert runs["using"] == "composite"
    steps = runs["steps"]
    uses = [step["uses"] for step in steps if "uses" in step]
    assert uses == ["actions/setup-python@v5", "github/codeql-action/upload-sarif@v3"]
    for step in steps:
        assert ("uses" in step) != ("run" in step), step
        if "run" in step:
            assert step["shell"] == "bash"  # composite run steps must name their shell
            # Inputs reach scripts only through env: `${{ }}` pasted into a script could inject code.
            assert "${{" not in step["run"], step["name"]
    referenced = set(re.findall(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", (REPOSITORY / "action.yml").read_text(encoding="utf-8")))
    referenced |= {name for step in steps for name in re.findall(r"inputs\.([\w-]+)", str(step.get("if", "")))}
    assert referenced == set(inputs)
    (upload,) = (step for step in steps if step.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["if"] == "inputs.sarif == 'true'"
    sarif_step = next(step for step in steps if step.get("id") == "sarif")
    assert sarif_step["if"] == upload["if"]
    assert steps.index(sarif_step) < steps.index(upload) < steps.index(_annotations_step(steps))  # upload before a failing step
    install = next(step for step in steps if step.get("name") == "Install esper-lint")
    assert install["run"].strip() == 'python -m pip install --disable-pip-version-check --quiet "$GITHUB_ACTION_PATH"'


def _annotations_step(steps: list[dict[str, Any]]) -> dict[str, Any]:
    return next(step for step in steps if "--format github" in step.get("run", ""))


def _run_step(step: dict[str, Any], inputs: dict[str, str], project: Path, shim: Path, temp: Path) -> subprocess.CompletedProcess[str]:
    """Run one of the action's script steps as the runner would: its `env:` with the inputs filled
    in, bash, in its working directory; `esper-lint` on PATH is this checkout's."""

    def fill(value: str) -> str:
        return re.sub(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}", lambda match: inputs[match.group(1)], value)

    env = {
        **os.environ,
        "PATH": f"{shim}{os.pathsep}{os.environ['PATH']}",
        "PYTHONPATH": str(REPOSITORY),
        "RUNNER_TEMP": str(temp),
        "GITHUB_OUTPUT": str(temp / "github_output"),
        **{name: fill(value) for name, value in step.get("env", {}).items()},
    }
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", step["run"]],
        cwd=project / fill(step.get("working-directory", ".")),
        capture_output=True,
        text=True,
        env=env,
        timeout=TIMEOUT,
        check=False,
    )


def test_the_action_commands_annotate_and_write_sarif(tmp_path: Path) -> None:
    action = _action()
    steps = action["runs"]["steps"]
    inputs = {name: spec["default"] for name, spec in action["inputs"].items()}
    inputs.update(paths="src other.py", args="--ignore ESP301", sarif="true")
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / ".git").mkdir()
    (project / "src" / "a.py").write_text("import torch\ntorch._foreach_norm(x)\n", encoding="utf-8")
    (project / "other.py").write_text("import torch\ntorch._dynamo.disable(f)\n", encoding="utf-8")
    (project / "ignored.py").write_text("import torch\ntorch._x\n", encoding="utf-8")  # not among the paths
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "esper-lint").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m esper_lint "$@"\n', encoding="utf-8")
    (shim / "esper-lint").chmod(0o755)
    temp = tmp_path / "runner-temp"
    temp.mkdir()

    sarif = _run_step(next(step for step in steps if step.get("id") == "sarif"), inputs, project, shim, temp)
    assert sarif.returncode == 0, sarif.stderr
    (output,) = (temp / "github_output").read_text(encoding="utf-8").splitlines()
    assert output == f"file={temp / 'esper-lint.sarif'}"
    log = json.loads((temp / "esper-lint.sarif").read_text(encoding="utf-8"))
    results = log["runs"][0]["results"]
    located = sorted((r["ruleId"], r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]) for r in results)
    assert located == [("ESP101", "other.py"), ("ESP101", "src/a.py")]  # ESP301 ignored by `args`

    annotations = _run_step(_annotations_step(steps), inputs, project, shim, temp)
    assert annotations.returncode == 1, annotations.stderr  # findings fail the step
    lines = annotations.stdout.splitlines()
    assert [line.split("::")[1].split(",")[0] for line in lines] == ["error file=other.py", "error file=src/a.py"]

    # A glob character in an input stays a word: the step fails naming it, instead of expanding it.
    inputs.update(paths="src/*.py")
    globbed = _run_step(_annotations_step(steps), inputs, project, shim, temp)
    assert globbed.returncode == 2 and "src/*.py" in globbed.stderr
