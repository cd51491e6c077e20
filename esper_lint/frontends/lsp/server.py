"""The language server: a thin adapter from LSP to the engine and the fixer.

- Diagnostics on didOpen, didChange (debounced) and didSave: `engine.analyse_source` on the editor's
  buffer, with the configuration `check` would use for that file (the nearest pyproject.toml with a
  `[tool.esper-lint]` table, searched from the file's folder). An unparsable buffer is ESP001, as on
  the command line; a configuration error is one diagnostic naming the file and the key.
- Code actions: for a finding with a fix, what `check --fix` would write (`fix.fix_source` restricted
  to that finding's code) as a quick fix; `source.fixAll.esper-lint` for every safe fix in the file;
  and "suppress with `# noqa: ESPxxx`" on the finding's line.

Positions: findings carry 1-based lines and columns counted in code points; LSP counts UTF-16 code
units unless the client offers another encoding, which pygls negotiates.
"""

from __future__ import annotations

import asyncio
import difflib
import io
import logging
import re
import tokenize
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path
from pygls.workspace import TextDocument

from esper_lint import __version__
from esper_lint.config import Config, ConfigError, load_config
from esper_lint.engine import analyse_source
from esper_lint.frontends.output import rule_help_uri
from esper_lint.model import Finding

logger = logging.getLogger(__name__)

SOURCE = "esper-lint"
FIX_ALL_KIND = f"{types.CodeActionKind.SourceFixAll.value}.esper-lint"
# Typing pauses shorter than this do not start an analysis: the last change wins.
CHANGE_DEBOUNCE_SECONDS = 0.15
# An editor's line breaks (LSP: \n, \r\n and \r); str.splitlines also splits at \f, \v, \x1c-\x1e,
# \x85 and \u2028-\u2029, which neither the LSP client nor Python's tokenizer treats as line ends.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_DOTTED_NAME = re.compile(r"[\w.]+")
# flake8's own syntax (flake8/defaults.py's NOQA_INLINE_REGEXP): a bare noqa comment, or one with
# codes (`noqa: E1,W2`), separated by commas or spaces.
_NOQA = re.compile(r"# noqa(?::[\s]?(?P<codes>([A-Z]+[0-9]+(?:[,\s]+)?)+))?", re.IGNORECASE)
_CODING = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-\w.]+)")


@dataclass
class _Analysed:
    """One document version's findings and the configuration they were made with."""

    version: int | None
    findings: list[Finding]
    config: Config | None  # None: the configuration is broken, or excludes the file (no findings, no fixes)
    path: str
    problem: str | None = None  # a configuration error, or an internal error, to show at the top
    fixes: dict[tuple[str, ...], tuple[str | None, int]] = field(default_factory=dict)  # codes -> (new text, fix count)


class EsperLanguageServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__("esper-lint", __version__, text_document_sync_kind=types.TextDocumentSyncKind.Incremental)
        self.shutdown_requested = False
        self.analysed: dict[str, _Analysed] = {}
        self.pending: dict[str, asyncio.TimerHandle] = {}


def build_server() -> EsperLanguageServer:
    server = EsperLanguageServer()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: EsperLanguageServer, params: None) -> None:
        ls.shutdown_requested = True
        for handle in ls.pending.values():
            handle.cancel()
        ls.pending.clear()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: EsperLanguageServer, params: types.DidOpenTextDocumentParams) -> None:
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: EsperLanguageServer, params: types.DidChangeTextDocumentParams) -> None:
        uri = params.text_document.uri
        _cancel_pending(ls, uri)
        ls.pending[uri] = asyncio.get_running_loop().call_later(CHANGE_DEBOUNCE_SECONDS, _publish_pending, ls, uri)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: EsperLanguageServer, params: types.DidSaveTextDocumentParams) -> None:
        # The configuration may have changed since (a pyproject.toml edited meanwhile): read it again.
        ls.analysed.pop(params.text_document.uri, None)
        publish(ls, params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: EsperLanguageServer, params: types.DidCloseTextDocumentParams) -> None:
        uri = params.text_document.uri
        _cancel_pending(ls, uri)
        ls.analysed.pop(uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix, FIX_ALL_KIND], resolve_provider=False),
    )
    def code_action(ls: EsperLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return code_actions(ls, params)

    return server


# ---------------------------------------------------------------------------- diagnostics
def _cancel_pending(ls: EsperLanguageServer, uri: str) -> None:
    """Drop the debounced diagnostics still waiting for `uri` (a newer change, or the close)."""
    pending = ls.pending.pop(uri, None)
    if pending is not None:
        pending.cancel()


def _publish_pending(ls: EsperLanguageServer, uri: str) -> None:
    ls.pending.pop(uri, None)
    if uri in ls.workspace.text_documents:  # closed meanwhile: nothing to say
        publish(ls, uri)


def publish(ls: EsperLanguageServer, uri: str) -> None:
    document = ls.workspace.get_text_document(uri)
    analysed = analyse_document(ls, document)
    lines = split_lines(document.source)
    diagnostics = [to_diagnostic(ls, finding, lines) for finding in analysed.findings]
    if analysed.problem is not None:
        start = types.Position(line=0, character=0)
        problem = types.Diagnostic(
            range=types.Range(start=start, end=start), message=analysed.problem, severity=types.DiagnosticSeverity.Error, source=SOURCE
        )
        diagnostics.insert(0, problem)
    ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=document.version))


def analyse_document(ls: EsperLanguageServer, document: TextDocument) -> _Analysed:
    """The document's findings at its current version, computed once per version."""
    cached = ls.analysed.get(document.uri)
    if cached is not None and cached.version is not None and cached.version == document.version:
        return cached
    path = document_path(document.uri)
    display = path or document.uri
    problem: str | None = None
    findings: list[Finding] = []
    try:
        config: Config | None = load_config([Path(path)] if path is not None else [])
    except ConfigError as exc:  # the message names the file and the key, as `check` prints it
        config, problem = None, f"esper-lint: configuration error: {exc}"
    if config is not None and path is not None and config.is_excluded(Path(path)):
        config = None  # `check` skips an excluded file, even one named on its command line
    elif config is not None:
        try:
            findings = analyse_source(buffer_bytes(document.source), display, config).findings
        except Exception as exc:  # a bug in esper-lint must not take the editor's server down
            logger.exception("esper-lint: internal error while analysing %s", display)
            problem = f"esper-lint: internal error while analysing this file ({type(exc).__name__}: {exc}); please report it"
    analysed = _Analysed(document.version, findings, config, display, problem)
    ls.analysed[document.uri] = analysed
    return analysed


def document_path(uri: str) -> str | None:
    """The file a document is, for the configuration search; None for an unsaved buffer."""
    if not uri.startswith("file:"):
        return None
    return to_fs_path(uri)


def buffer_bytes(text: str) -> bytes:
    """The bytes the file would hold: in the encoding its coding cookie declares, as Python reads
    it, else UTF-8. A character that encoding cannot hold leaves the text in UTF-8 (the analysis then
    reports what Python would say of such a file: nothing it could not also say of this one)."""
    raw = text.encode("utf-8", "surrogatepass")
    encoding = declared_encoding(raw)
    if encoding in (None, "utf-8"):
        return raw
    try:
        return text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return raw


def declared_encoding(raw: bytes) -> str | None:
    """The coding cookie of the first two lines (PEP 263), normalised as `tokenize` names it."""
    for line in raw.splitlines()[:2]:
        if _CODING.match(line):
            try:
                encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
            except SyntaxError:
                return None
            return "utf-8" if encoding == "utf-8-sig" else encoding
        if line.strip() and not line.lstrip().startswith(b"#"):
            return None
    return None


def split_lines(text: str) -> list[str]:
    """The document's lines as an LSP client counts them, each with its line break."""
    return _LINE.findall(text)


def _client_position(ls: EsperLanguageServer, lines: Sequence[str], line: int, column: int) -> types.Position:
    """A 0-based line and code-point column as the client counts it (UTF-16 units by default)."""
    if line >= len(lines):
        return types.Position(line=len(lines), character=0)
    text = lines[line].rstrip("\r\n")
    return types.Position(line=line, character=ls.workspace.position_codec.client_num_units(text[: max(column, 0)]))


def _finding_range(ls: EsperLanguageServer, finding: Finding, lines: Sequence[str]) -> types.Range:
    """From the finding's position to the end of the dotted name there (`torch._foreach_norm`),
    else to the end of the line's text (a comment, a syntax error)."""
    line, column = max(finding.line - 1, 0), max(finding.column - 1, 0)
    if line >= len(lines):
        start = _client_position(ls, lines, line, column)
        return types.Range(start=start, end=start)
    text = lines[line].rstrip("\r\n")
    column = min(column, len(text))
    name = _DOTTED_NAME.match(text, column)
    end = name.end() if name is not None and name.end() > column else len(text.rstrip())
    return types.Range(start=_client_position(ls, lines, line, column), end=_client_position(ls, lines, line, max(end, column)))


def to_diagnostic(ls: EsperLanguageServer, finding: Finding, lines: Sequence[str]) -> types.Diagnostic:
    # ESP001 means the file could not be analysed at all (a syntax error): an error, as an editor
    # shows a syntax error; the contract findings are warnings, as linters' findings are in editors.
    severity = types.DiagnosticSeverity.Error if finding.code == "ESP001" else types.DiagnosticSeverity.Warning
    return types.Diagnostic(
        range=_finding_range(ls, finding, lines),
        message=finding.message,
        severity=severity,
        code=finding.code,
        code_description=types.CodeDescription(href=rule_help_uri(finding.code)),
        source=SOURCE,
        # A stale documentation block (ESP103) is text the code no longer needs: editors fade it.
        tags=[types.DiagnosticTag.Unnecessary] if finding.code == "ESP103" else None,
        data={"name": finding.name, "line": finding.line, "column": finding.column},
    )


# ---------------------------------------------------------------------------- code actions
def code_actions(ls: EsperLanguageServer, params: types.CodeActionParams) -> list[types.CodeAction]:
    from esper_lint.fix.registry import FIXABLE_CODES, UNSAFE_CODES

    uri = params.text_document.uri
    if uri not in ls.workspace.text_documents:
        return []
    document = ls.workspace.get_text_document(uri)
    analysed = analyse_document(ls, document)
    if analysed.config is None:
        return []
    wanted = params.context.only
    lines = split_lines(document.source)
    first, last = params.range.start.line, params.range.end.line
    actions: list[types.CodeAction] = []
    if wanted is None or any(kind.startswith(types.CodeActionKind.QuickFix.value) for kind in map(str, wanted)):
        for finding in analysed.findings:
            if not first <= finding.line - 1 <= last:
                continue
            diagnostic = _client_diagnostic(params.context.diagnostics, finding) or to_diagnostic(ls, finding, lines)
            if finding.code in FIXABLE_CODES and finding.code not in UNSAFE_CODES:
                fix = _fix_action(ls, document, analysed, finding, diagnostic)
                if fix is not None:
                    actions.append(fix)
            suppress = _suppress_action(ls, document, lines, finding, diagnostic)
            if suppress is not None:
                actions.append(suppress)
    # Asked for by kind (VS Code's fix on save), or listed with the quick fixes where the client names
    # no kind (Neovim's and Helix's menus, which have no fix-all of their own).
    if wanted is None or any(FIX_ALL_KIND.startswith(str(kind)) for kind in wanted):
        fix_all = _fix_all_action(ls, document, analysed)
        if fix_all is not None:
            actions.append(fix_all)
    return actions


def _client_diagnostic(diagnostics: Sequence[types.Diagnostic], finding: Finding) -> types.Diagnostic | None:
    """The client's copy of the finding's diagnostic, which its quick fix should name."""
    for diagnostic in diagnostics:
        if diagnostic.source == SOURCE and diagnostic.code == finding.code and diagnostic.range.start.line == finding.line - 1:
            return diagnostic
    return None


def _fixed_text(document: TextDocument, analysed: _Analysed, codes: tuple[str, ...]) -> tuple[str | None, int]:
    """The document as `check --fix --select CODES` would write it, and how many fixes that is;
    (None, 0) where the fixer declines (it then says why on the command line)."""
    if codes in analysed.fixes:
        return analysed.fixes[codes]
    from esper_lint.fix.api import fix_source

    assert analysed.config is not None
    raw = buffer_bytes(document.source)
    try:
        outcome = fix_source(raw, analysed.path, analysed.config, select_enabled=lambda code: code in codes)
        encoding = declared_encoding(raw) or "utf-8"
        result: tuple[str | None, int] = (
            (outcome.new_source.decode(encoding, "surrogatepass"), len(outcome.applied))
            if outcome.changed and outcome.error is None
            else (None, 0)
        )
    except Exception:  # a fixer bug: no action, and the server goes on
        logger.exception("esper-lint: internal error while fixing %s", analysed.path)
        result = (None, 0)
    analysed.fixes[codes] = result
    return result


def _fix_action(
    ls: EsperLanguageServer, document: TextDocument, analysed: _Analysed, finding: Finding, diagnostic: types.Diagnostic
) -> types.CodeAction | None:
    new_text, count = _fixed_text(document, analysed, (finding.code,))
    if new_text is None or new_text == document.source:
        return None
    title = f"Fix {finding.code} ({finding.name})" if count == 1 and finding.name else f"Fix {finding.code}"
    if count > 1:
        title = f"Fix all {count} {finding.code} findings in this file"
    return types.CodeAction(
        title=f"esper-lint: {title}",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        is_preferred=count == 1,
        edit=_workspace_edit(ls, document, text_edits(ls, document.source, new_text)),
    )


def _fix_all_action(ls: EsperLanguageServer, document: TextDocument, analysed: _Analysed) -> types.CodeAction | None:
    from esper_lint.fix.api import fixable_codes

    assert analysed.config is not None
    codes = tuple(fixable_codes(analysed.config, analysed.path))
    if not any(finding.code in codes for finding in analysed.findings):
        return None  # nothing to fix: no need to run the fixer
    new_text, _count = _fixed_text(document, analysed, codes)
    if new_text is None or new_text == document.source:
        return None
    return types.CodeAction(
        title="esper-lint: fix all auto-fixable problems",
        kind=FIX_ALL_KIND,
        edit=_workspace_edit(ls, document, text_edits(ls, document.source, new_text)),
    )


def _suppress_action(
    ls: EsperLanguageServer, document: TextDocument, lines: Sequence[str], finding: Finding, diagnostic: types.Diagnostic
) -> types.CodeAction | None:
    """`# noqa: CODE` at the end of the finding's line, or CODE added to the `# noqa:` there. None
    where a comment cannot go (a line continued by a backslash, or ending inside a string), on a
    full-line comment (a documentation block: its text is what esper-lint reads), and for ESP001."""
    index = finding.line - 1
    if finding.code == "ESP001" or not 0 <= index < len(lines):
        return None
    text = lines[index].rstrip("\r\n")
    content = text.rstrip()
    if not content or content.lstrip().startswith("#") or content.endswith("\\") or _ends_inside_string(lines, index):
        return None
    existing = _NOQA.search(content)
    if existing is not None and existing.group("codes") is None:
        return None  # a bare noqa comment already silences every code on the line
    if existing is not None:
        if finding.code in re.split(r"[,\s]+", existing.group("codes").upper()):
            return None
        codes = existing.group("codes")
        column, insertion = existing.start("codes") + len(codes.rstrip(", \t")), f", {finding.code}"
    else:
        column, insertion = len(content), f"  # noqa: {finding.code}"
    position = _client_position(ls, lines, index, column)
    edit = types.TextEdit(range=types.Range(start=position, end=position), new_text=insertion)
    return types.CodeAction(
        title=f"esper-lint: suppress {finding.code} on this line (# noqa: {finding.code})",
        kind=types.CodeActionKind.QuickFix,
        diagnostics=[diagnostic],
        edit=_workspace_edit(ls, document, [edit]),
    )


def _ends_inside_string(lines: Sequence[str], index: int) -> bool:
    """Whether line `index` (0-based) ends inside a multi-line string; True when it cannot be told."""
    reader = iter(lines)
    try:
        for token in tokenize.generate_tokens(lambda: next(reader, "")):
            if token.start[0] - 1 > index:
                return False
            if token.start[0] - 1 <= index < token.end[0] - 1 and token.type != tokenize.NL:
                return True
    except (tokenize.TokenError, SyntaxError):
        return True
    return False


def text_edits(ls: EsperLanguageServer, old: str, new: str) -> list[types.TextEdit]:
    """Line-level edits turning `old` into `new`: only the lines a fix changed are replaced, so the
    editor keeps the cursor, folds and marks elsewhere."""
    old_lines, new_lines = split_lines(old), split_lines(new)
    edits = []
    matcher = difflib.SequenceMatcher(None, old_lines, new_lines, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        edits.append(
            types.TextEdit(
                range=types.Range(start=_line_start(ls, old_lines, i1), end=_line_start(ls, old_lines, i2)),
                new_text="".join(new_lines[j1:j2]),
            )
        )
    return edits


def _line_start(ls: EsperLanguageServer, lines: Sequence[str], index: int) -> types.Position:
    """The start of line `index`; past the last line, the end of the document."""
    if index < len(lines):
        return types.Position(line=index, character=0)
    if not lines or lines[-1].endswith(("\n", "\r")):
        return types.Position(line=len(lines), character=0)
    return _client_position(ls, lines, len(lines) - 1, len(lines[-1]))


def _workspace_edit(ls: EsperLanguageServer, document: TextDocument, edits: list[types.TextEdit]) -> types.WorkspaceEdit:
    """A versioned edit where the client takes one (it refuses it if the buffer changed since)."""
    capabilities = ls.client_capabilities.workspace
    versioned = bool(capabilities and capabilities.workspace_edit and capabilities.workspace_edit.document_changes)
    if versioned:
        identifier = types.OptionalVersionedTextDocumentIdentifier(uri=document.uri, version=document.version)
        return types.WorkspaceEdit(document_changes=[types.TextDocumentEdit(text_document=identifier, edits=list(edits))])
    return types.WorkspaceEdit(changes={document.uri: edits})
