"""`esper-lint server` as an editor meets it: a subprocess spoken to in JSON-RPC over stdio with
LSP's Content-Length framing, the way VS Code, Neovim and Helix talk to it.

The client below is deliberately independent of pygls (the server's library), so that a framing or
serialisation bug on either side cannot cancel out. Every wait is bounded; a server that hangs fails
the test instead of stalling the suite.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pygls", reason="the language server needs the `lsp` extra (pip install 'esper-lint[lsp]')")

from esper_lint.frontends.output import rule_help_uri

REPOSITORY = Path(__file__).resolve().parent.parent
WAIT_SECONDS = 60.0  # a cold start imports libcst and the torch index on a busy 2-core machine

SOURCE = """\
import torch


def run(fn, grads):
    norms = torch._foreach_norm(grads)
    torch._dynamo.disable(fn)
    return norms
"""

FIXED_ESP301 = SOURCE.replace("torch._dynamo.disable(fn)", "torch.compiler.disable(fn)")


class LspClient:
    """A minimal LSP client: requests wait for their response; notifications are queued."""

    def __init__(self, cwd: Path, *arguments: str) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "esper_lint", "server", *arguments],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=env,
        )
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.notifications: list[dict[str, Any]] = []
        self.next_id = 0
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        stream = self.process.stdout
        while True:
            length = None
            while True:
                header = stream.readline()
                if not header:
                    self.messages.put(None)  # the server closed its end
                    return
                header = header.strip()
                if not header:
                    break
                name, _, value = header.decode("ascii").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            assert length is not None, "a message without Content-Length"
            self.messages.put(json.loads(stream.read(length).decode("utf-8")))

    def _send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.process.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.process.stdin.flush()

    def _next(self) -> dict[str, Any]:
        try:
            message = self.messages.get(timeout=WAIT_SECONDS)
        except queue.Empty:
            raise AssertionError(f"no message from the server in {WAIT_SECONDS} s") from None
        if message is None:
            raise AssertionError(f"the server closed stdout; stderr: {self.stderr()}")
        return message

    def request(self, method: str, params: Any) -> Any:
        self.next_id += 1
        request_id = self.next_id
        self._send({"id": request_id, "method": method, "params": params})
        while True:
            message = self._next()
            if message.get("id") == request_id and "method" not in message:
                assert "error" not in message, message["error"]
                return message.get("result")
            if "id" in message and "method" in message:  # a request from the server (e.g. a progress token)
                self._send({"id": message["id"], "result": None})
            else:
                self.notifications.append(message)

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait_for(self, method: str, matches: Callable[[dict[str, Any]], bool] = lambda params: True) -> dict[str, Any]:
        for index, message in enumerate(self.notifications):
            if message.get("method") == method and matches(message["params"]):
                del self.notifications[index]
                return message["params"]
        while True:
            message = self._next()
            if message.get("method") == method and "id" not in message and matches(message["params"]):
                return message["params"]
            if "id" in message and "method" in message:
                self._send({"id": message["id"], "result": None})
            else:
                self.notifications.append(message)

    def stderr(self) -> str:
        if self.process.poll() is None:
            return "(still running)"
        assert self.process.stderr is not None
        return self.process.stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT_SECONDS)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / ".git").mkdir()  # the repository's root: the configuration search stops here
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "demo"\nversion = "0"\ndependencies = ["torch>=2.3"]\n\n[tool.esper-lint]\n', encoding="utf-8"
    )
    (tmp_path / "mod.py").write_text(SOURCE, encoding="utf-8")
    return tmp_path


@pytest.fixture
def client(project: Path) -> Iterator[LspClient]:
    started = LspClient(project)
    try:
        yield started
    finally:
        started.close()


def _initialize(client: LspClient, project: Path, *, document_changes: bool = True) -> dict[str, Any]:
    result = client.request(
        "initialize",
        {
            "processId": os.getpid(),
            "rootUri": project.as_uri(),
            "capabilities": {
                "workspace": {"workspaceEdit": {"documentChanges": document_changes}},
                "textDocument": {"publishDiagnostics": {"versionSupport": True}, "codeAction": {}},
            },
        },
    )
    client.notify("initialized", {})
    return result


def _open(client: LspClient, uri: str, text: str, version: int = 1) -> dict[str, Any]:
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": version, "text": text}})
    return client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and params.get("version") == version)


def _cli_findings(project: Path, path: Path) -> list[tuple[int, int, str]]:
    """What `esper-lint check --format json` says of the file: (0-based line, 0-based column, code)."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    completed = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--no-cache", "--format", "json", str(path)],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert completed.returncode in (0, 1), completed.stderr
    return [(item["line"] - 1, item["column"] - 1, item["code"]) for item in json.loads(completed.stdout)]


def _apply(text: str, edits: list[dict[str, Any]]) -> str:
    """Apply LSP TextEdits (UTF-16 positions; ASCII here) the way a client does: back to front."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(position: dict[str, int]) -> int:
        return offsets[min(position["line"], len(lines))] + position["character"]

    for edit in sorted(edits, key=lambda item: offset(item["range"]["start"]), reverse=True):
        start, end = offset(edit["range"]["start"]), offset(edit["range"]["end"])
        text = text[:start] + edit["newText"] + text[end:]
    return text


def _edits_of(action: dict[str, Any], uri: str) -> list[dict[str, Any]]:
    edit = action["edit"]
    if "documentChanges" in edit:
        (change,) = edit["documentChanges"]
        assert change["textDocument"]["uri"] == uri
        return list(change["edits"])
    return list(edit["changes"][uri])


def test_a_session_from_initialize_to_exit(client: LspClient, project: Path) -> None:
    result = _initialize(client, project)
    capabilities = result["capabilities"]
    assert result["serverInfo"]["name"] == "esper-lint"
    assert capabilities["codeActionProvider"]["codeActionKinds"] == ["quickfix", "source.fixAll.esper-lint"]
    assert capabilities["textDocumentSync"]["change"] == 2  # incremental
    path = project / "mod.py"
    uri = path.as_uri()

    published = _open(client, uri, SOURCE)
    diagnostics = published["diagnostics"]
    # The same findings as the command line, at the same places.
    assert [(d["range"]["start"]["line"], d["range"]["start"]["character"], d["code"]) for d in diagnostics] == _cli_findings(project, path)
    by_code = {(d["code"], d["range"]["start"]["line"]): d for d in diagnostics}
    norm = by_code["ESP101", 4]
    assert norm["range"] == {"start": {"line": 4, "character": 12}, "end": {"line": 4, "character": 31}}  # torch._foreach_norm
    assert norm["severity"] == 2 and norm["source"] == "esper-lint"
    assert norm["codeDescription"]["href"] == rule_help_uri("ESP101")
    replacement = by_code["ESP301", 5]
    assert replacement["range"] == {"start": {"line": 5, "character": 4}, "end": {"line": 5, "character": 25}}
    assert "torch.compiler.disable" in replacement["message"]

    # Line 6's quick fixes: ESP301's rewrite, as `check --fix --select ESP301` writes it.
    actions = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": replacement["range"],
            "context": {"diagnostics": [replacement], "triggerKind": 1},
        },
    )
    titles = [action["title"] for action in actions]
    fix = next(action for action in actions if "ESP301" in action["title"] and action["title"].startswith("esper-lint: Fix"))
    assert fix["kind"] == "quickfix" and fix["diagnostics"][0]["code"] == "ESP301" and fix["isPreferred"] is True
    assert fix["edit"]["documentChanges"][0]["textDocument"]["version"] == 1
    assert _apply(SOURCE, _edits_of(fix, uri)) == FIXED_ESP301
    suppress = next(action for action in actions if action["title"].startswith("esper-lint: suppress ESP301"))
    assert _apply(SOURCE, _edits_of(suppress, uri)).splitlines()[5] == "    torch._dynamo.disable(fn)  # noqa: ESP301"
    # ESP101's fix is a complete block only where the index knows the "since" and the registry a
    # drop-in fallback: for torch._dynamo.disable, not for torch._foreach_norm (no template unasked).
    assert "esper-lint: Fix ESP101 (torch._dynamo.disable)" in titles
    assert not any("torch._foreach_norm" in title and title.startswith("esper-lint: Fix") for title in titles)
    # A client that names no kind (Neovim, Helix) also gets the file's fix-all in the menu.
    assert titles[-1] == "esper-lint: fix all auto-fixable problems"

    # The editor applies the fix as incremental changes (applied in turn: back to front keeps the
    # positions valid); the next diagnostics (debounced) have no ESP301, and the public
    # torch.compiler.disable needs no documentation.
    edits = sorted(
        _edits_of(fix, uri), key=lambda edit: (edit["range"]["start"]["line"], edit["range"]["start"]["character"]), reverse=True
    )
    changes = [{"range": edit["range"], "text": edit["newText"]} for edit in edits]
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 2}, "contentChanges": changes})
    after = client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and params.get("version") == 2)
    assert [(d["code"], d["range"]["start"]["line"]) for d in after["diagnostics"]] == [("ESP101", 4)]

    # Fix-all (what VS Code runs on save with "source.fixAll"): every safe fix of the file.
    fix_all_actions = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": ["source.fixAll"]},
        },
    )
    # what is left (torch._foreach_norm's ESP101) has no safe fix: no action, and --fix writes nothing
    assert fix_all_actions == []
    path.write_text(FIXED_ESP301, encoding="utf-8")
    cli = subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--no-cache", "--fix", str(path)],
        cwd=project,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY)},
        timeout=WAIT_SECONDS,
        check=False,
    )
    assert cli.returncode == 1, cli.stderr  # torch._foreach_norm's ESP101 has no fix: it stays
    assert path.read_text(encoding="utf-8") == FIXED_ESP301

    # Back to the original text: fix-all is exactly what `check --fix` writes.
    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": SOURCE}]})
    client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and params.get("version") == 3)
    (fix_all,) = client.request(
        "textDocument/codeAction",
        {
            "textDocument": {"uri": uri},
            "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
            "context": {"diagnostics": [], "only": ["source.fixAll"]},
        },
    )
    assert fix_all["kind"] == "source.fixAll.esper-lint"
    path.write_text(SOURCE, encoding="utf-8")
    subprocess.run(
        [sys.executable, "-m", "esper_lint", "check", "--no-cache", "--fix", str(path)],
        cwd=project, capture_output=True, env={**os.environ, "PYTHONPATH": str(REPOSITORY)}, timeout=WAIT_SECONDS, check=False,
    )
    assert _apply(SOURCE, _edits_of(fix_all, uri)) == path.read_text(encoding="utf-8") != SOURCE

    assert client.request("shutdown", None) is None
    client.notify("exit", None)
    assert client.process.wait(timeout=WAIT_SECONDS) == 0


def test_a_bad_buffer_is_ESP001_and_the_server_goes_on(client: LspClient, project: Path) -> None:
    _initialize(client, project, document_changes=False)
    path = project / "broken.py"
    path.write_text("import torch\ndef f(:\n    torch._x\n", encoding="utf-8")
    uri = path.as_uri()
    published = _open(client, uri, path.read_text(encoding="utf-8"))
    assert [(d["code"], d["severity"]) for d in published["diagnostics"]] == [("ESP001", 1)]
    assert [(d["range"]["start"]["line"], d["range"]["start"]["character"], d["code"]) for d in published["diagnostics"]] == _cli_findings(
        project, path
    )
    # No quick fix for a syntax error, and no crash asking for one.
    assert (
        client.request(
            "textDocument/codeAction",
            {
                "textDocument": {"uri": uri},
                "range": published["diagnostics"][0]["range"],
                "context": {"diagnostics": published["diagnostics"]},
            },
        )
        == []
    )
    # Repaired: the real finding appears; without documentChanges support, edits come as `changes`.
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": "import torch\ntorch._foreach_norm(x)  # noqa:E501\n"}]},
    )
    repaired = client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and params.get("version") == 2)
    assert [d["code"] for d in repaired["diagnostics"]] == ["ESP101"]
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": repaired["diagnostics"][0]["range"], "context": {"diagnostics": repaired["diagnostics"]}},
    )
    assert actions and all("changes" in action["edit"] for action in actions)
    # Suppressing adds the code to the line's flake8-style noqa comment.
    suppress = next(action for action in actions if action["title"].startswith("esper-lint: suppress ESP101"))
    (edit,) = suppress["edit"]["changes"][uri]
    suppressed = _apply("import torch\ntorch._foreach_norm(x)  # noqa:E501\n", [edit])
    assert suppressed == "import torch\ntorch._foreach_norm(x)  # noqa:E501, ESP101\n"
    # Non-ASCII before the name: LSP counts UTF-16 units (the emoji is two), findings count code points.
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": "import torch\nx = ('😋', torch._foreach_norm)\n"}]},
    )
    moved = client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and params.get("version") == 3)
    (diagnostic,) = moved["diagnostics"]
    assert diagnostic["range"] == {"start": {"line": 1, "character": 11}, "end": {"line": 1, "character": 30}}
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    closed = client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and not params["diagnostics"])
    assert closed["diagnostics"] == []
    assert client.request("shutdown", None) is None
    client.notify("exit", None)
    assert client.process.wait(timeout=WAIT_SECONDS) == 0


def test_a_configuration_error_is_one_diagnostic_naming_the_file_and_key(client: LspClient, project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.esper-lint]\nselct = ['ESP1']\n", encoding="utf-8")
    _initialize(client, project)
    uri = (project / "mod.py").as_uri()
    (diagnostic,) = _open(client, uri, SOURCE)["diagnostics"]
    assert diagnostic["severity"] == 1
    assert "pyproject.toml" in diagnostic["message"] and "unknown key `selct`" in diagnostic["message"]
    # Repaired and saved: read again.
    (project / "pyproject.toml").write_text("[tool.esper-lint]\nignore = ['ESP301']\n", encoding="utf-8")
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    saved = client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and bool(params["diagnostics"]))
    assert sorted(d["code"] for d in saved["diagnostics"]) == ["ESP101", "ESP101"]
    # Excluded, as `check mod.py` then skips it: no diagnostics, and no actions.
    (project / "pyproject.toml").write_text("[tool.esper-lint]\nexclude = ['mod.py']\n", encoding="utf-8")
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    excluded = client.wait_for("textDocument/publishDiagnostics", lambda params: params["uri"] == uri and not params["diagnostics"])
    assert excluded["diagnostics"] == [] and _cli_findings(project, project / "mod.py") == []
    everything = {"start": {"line": 0, "character": 0}, "end": {"line": 7, "character": 0}}
    request = {"textDocument": {"uri": uri}, "range": everything, "context": {"diagnostics": []}}
    assert client.request("textDocument/codeAction", request) == []
    assert client.request("shutdown", None) is None
    client.notify("exit", None)
    assert client.process.wait(timeout=WAIT_SECONDS) == 0


def test_exit_without_shutdown_is_status_1_and_a_closed_pipe_ends_the_server(project: Path) -> None:
    """LSP: `exit` before `shutdown` exits 1. A client that dies closes the pipe: the server ends too."""
    client = LspClient(project)
    try:
        _initialize(client, project)
        client.notify("exit", None)
        assert client.process.wait(timeout=WAIT_SECONDS) == 1
    finally:
        client.close()
    client = LspClient(project)
    try:
        _initialize(client, project)
        assert client.process.stdin is not None
        client.process.stdin.close()
        assert client.process.wait(timeout=WAIT_SECONDS) == 1
    finally:
        client.close()


def test_sigterm_ends_the_server_at_once(project: Path) -> None:
    """An editor stops its server with SIGTERM, often with the pipe still open: exit 143 at once.
    (Started with --stdio, which some clients append to the command they are given.)"""
    client = LspClient(project, "--stdio")
    try:
        _initialize(client, project)
        client.process.send_signal(signal.SIGTERM)
        assert client.process.wait(timeout=WAIT_SECONDS) == 143
        assert "esper-lint: server stopped by SIGTERM" in client.stderr()
    finally:
        client.close()


def test_without_pygls_the_server_says_what_to_install() -> None:
    """One line naming the extra and exit 2, not an ImportError's traceback. `python -S` leaves out
    site-packages, where pygls is; the rest of esper-lint's start-up needs none of them."""
    env = {**os.environ, "PYTHONPATH": str(REPOSITORY)}
    command = [sys.executable, "-S", "-c", "import pygls"]
    assert subprocess.run(command, capture_output=True, env=env, timeout=WAIT_SECONDS, check=False).returncode == 1
    completed = subprocess.run(
        [sys.executable, "-S", "-m", "esper_lint", "server"],
        capture_output=True,
        text=True,
        env=env,
        timeout=WAIT_SECONDS,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [
        "esper-lint: error: `esper-lint server` needs pygls and lsprotocol: pip install 'esper-lint[lsp]'"
    ]
