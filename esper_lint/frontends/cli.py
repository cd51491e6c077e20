"""`esper-lint`: the command line front end over the engine.

Exit codes: 0 no findings, 1 findings, 2 usage, configuration or I/O error, 3 internal error (a bug
in esper-lint: one stderr line names the file being processed and the error), 130 interrupted
(SIGINT), 143 terminated (SIGTERM). Every message is on stderr; no other code and no traceback
ever ends a run (ESPER_LINT_DEBUG=1 adds the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from esper_lint import __version__
from esper_lint.config import Config, ConfigError, load_config
from esper_lint.frontends.discovery import declarations_display, discover, display_path
from esper_lint.frontends.errors import InternalError, Stopped, describe
from esper_lint.frontends.output import REPORTERS
from esper_lint.frontends.runner import CACHE_DIR_NAME, run_files
from esper_lint.model import Finding, ReferenceRecord

if TYPE_CHECKING:  # the fixer (libcst) is imported only when a fix is asked for
    from esper_lint.fix import FixRun
    from esper_lint.frontends.settings import Settings

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130, 143: the shell's convention


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, told the terminal's width: its own asks `shutil`, whose import
    (with bz2, lzma and fnmatch) costs a start-up more than all the parsing it does."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position, _terminal_columns() - 2 if width is None else width)


def _terminal_columns() -> int:
    """`shutil.get_terminal_size().columns`, without importing shutil."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80 if sys.__stdout__ is not None else 80
    except (AttributeError, ValueError, OSError):
        return 80


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse's own exit code for usage errors is 2 as well
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"esper-lint: error: {message}\n")


def _codes(value: str) -> list[str]:
    codes = [code.strip() for code in value.split(",") if code.strip()]
    for code in codes:
        if not (code == "ALL" or (code.startswith("ESP") and code[3:].isdigit() and len(code) <= 6) or code == "ESP"):
            raise argparse.ArgumentTypeError(f"{code!r} is not an esper-lint code or prefix (e.g. ESP101, ESP1, ALL)")
    return codes


def _positive(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line; given a `command`, only that subcommand's parser (a run builds its own)."""
    parser = _Parser(prog="esper-lint", description="Lint private PyTorch API use against the documented-fallback contract.")
    parser.add_argument("--version", action="version", version=f"esper-lint {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True
    for name, add in _COMMANDS.items():
        if command in (None, name):
            add(commands)
    return parser


# The human formats (findings for people; the summary on stderr) and the machine ones (exact bytes).
HUMAN_FORMATS = ("concise", "full", "text")
OUTPUT_FORMATS = ("concise", "full", "text", "json", "sarif", "github")


def _add_check(commands: Any) -> None:
    check = commands.add_parser("check", help="lint Python files for private torch API use")
    check.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: .); - reads stdin")
    check.add_argument(
        "--output-format", "--format", dest="format", choices=OUTPUT_FORMATS, default="text",
        help="output format (default: text, which is concise: path:line:col: CODE message; full adds the source line and a caret)",
    )
    check.add_argument("--select", type=_codes, help="comma-separated codes or prefixes to enable (replaces the configured select)")
    check.add_argument("--extend-select", type=_codes, default=[], help="comma-separated codes or prefixes to enable as well")
    check.add_argument("--ignore", type=_codes, help="comma-separated codes or prefixes to disable (added to the configured ignore)")
    check.add_argument("--config", type=Path, help="use this configuration file for every file, instead of the nearest one")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    fixing = check.add_mutually_exclusive_group()
    fixing.add_argument(
        "--fix", action="store_true", help="apply the safe fixes in place (ESP301, ESP101, ESP103), then report what remains"
    )
    fixing.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff and change nothing (exit 1 when there is something to fix)"
    )
    check.add_argument(
        "--unsafe-fixes", action="store_true", help="also apply the unsafe fixes (ESP103: stale blocks; swaps not proven for your range)"
    )
    check.add_argument(
        "--add-templates",
        action="store_true",
        help="with --fix or --diff: insert a documentation template to fill in where no complete block is known",
    )
    check.add_argument(
        "--show-fixes", action="store_true", help="list every fix found, applied or not, and mark fixable findings [*]"
    )
    check.add_argument("--write-baseline", type=Path, metavar="FILE", help="record today's findings in FILE and exit 0")
    check.add_argument("--baseline", type=Path, metavar="FILE", help="report only findings that are not in FILE")
    check.add_argument("-j", "--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    check.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    check.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")
    check.add_argument("--statistics", action="store_true", help="print the number of findings per code instead of the findings")
    check.add_argument("-q", "--quiet", action="store_true", help="print the findings only: no summary line")
    check.add_argument("--show-settings", action="store_true", help="print the configuration each PATH uses, and where it came from")
    check.add_argument("--show-files", action="store_true", help="print the files a run would check, and check nothing")
    check.add_argument(
        "--no-respect-gitignore", dest="respect_gitignore", action="store_false", help="also check files that .gitignore lists"
    )
    check.add_argument("--stdin-filename", type=Path, metavar="NAME", help="the name of the file read from stdin (with PATH -)")


def _add_verify(commands: Any) -> None:
    verify = commands.add_parser(
        "verify", help="prove the private torch names in use exist in the installed torch (ESP203)"
    )
    verify.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: .)")
    verify.add_argument("--format", choices=sorted(REPORTERS), default="text", help="output format (default: text)")
    verify.add_argument("--config", type=Path, help="use this pyproject.toml instead of searching upward")
    verify.add_argument("-j", "--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    verify.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    verify.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")
    verify.set_defaults(select=None, ignore=None, exit_zero=False)


def _add_inventory(commands: Any) -> None:
    inventory = commands.add_parser("inventory", help="every private torch name in use, its uses and what the index knows")
    inventory.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: .)")
    inventory.add_argument("--format", choices=("text", "json", "markdown"), default="text", help="output format (default: text)")
    inventory.add_argument("--config", type=Path, help="use this pyproject.toml instead of searching upward")
    inventory.add_argument("-j", "--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    inventory.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    inventory.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")


def _add_explain(commands: Any) -> None:
    explain = commands.add_parser("explain", help="what the torch index knows about a name (releases, replacement)")
    explain.add_argument("name", help="a dotted torch name, e.g. torch._foreach_norm")
    explain.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")


def _add_rule(commands: Any) -> None:
    rule = commands.add_parser("rule", help="print the documentation of a rule, or the table of all codes")
    rule.add_argument("code", nargs="?", help="e.g. ESP101")
    rule.add_argument("--table", action="store_true", help="print the README's markdown table of codes, made from rules/")
    rule.add_argument("--all", action="store_true", help="print the documentation of every rule")


def _add_server(commands: Any) -> None:
    server = commands.add_parser("server", help="run the language server on stdin/stdout (needs the `lsp` extra)")
    # Some LSP clients append --stdio to the command they are given; stdio is the only transport.
    server.add_argument("--stdio", action="store_true", help="talk over stdin/stdout (the default and only transport)")


_COMMANDS = {
    "check": _add_check,
    "verify": _add_verify,
    "inventory": _add_inventory,
    "explain": _add_explain,
    "rule": _add_rule,
    "server": _add_server,
}


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(arguments[0] if arguments and arguments[0] in _COMMANDS else None).parse_args(arguments)
    with _sigterm_stops_the_run():
        try:
            return _run(args)
        except KeyboardInterrupt:
            print("esper-lint: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Stopped as exc:
            print(f"esper-lint: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
            return 128 + exc.signum
        except InternalError as exc:
            return _internal_error(f"while processing {exc.where}: {exc.error}", exc)
        except BrokenPipeError:
            _discard_output()  # the reader went away (`| head`): nothing left to say
            return EXIT_ERROR
        except OSError as exc:  # an I/O error no file's handling caught (a cache or baseline folder)
            print(f"esper-lint: error: {exc.filename or '?'}: {exc.strerror or describe(exc)}", file=sys.stderr)
            _debug_traceback(exc)
            return EXIT_ERROR
        except Exception as exc:
            return _internal_error(f"(not while processing a file): {describe(exc)}", exc)


def _internal_error(what: str, error: BaseException) -> int:
    print(f"esper-lint: internal error {what} (a bug in esper-lint; ESPER_LINT_DEBUG=1 shows the traceback)", file=sys.stderr)
    _debug_traceback(error)
    return EXIT_INTERNAL


def _debug_traceback(error: BaseException) -> None:
    if os.environ.get("ESPER_LINT_DEBUG"):
        import traceback  # only here: every run would pay for importing it

        traceback.print_exception(error)


@contextmanager
def _sigterm_stops_the_run() -> Iterator[None]:
    """SIGTERM (`timeout`, a CI cancel) ends the run like Ctrl-C: the workers are killed, temporary
    files removed, and the exit code says so. Only the main thread can set signal handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _discard_output() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _run(args: argparse.Namespace) -> int:
    try:
        if args.command == "check":
            return _check(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "inventory":
            return _inventory(args)
        if args.command == "explain":
            return _explain(args.name, args.format)
        if args.command == "rule":
            return _rule(args.code, table=args.table, every=args.all)
        if args.command == "server":
            from esper_lint.frontends.lsp import serve

            return serve()
    except ConfigError as exc:
        print(f"esper-lint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_ERROR


def _tolerant_output() -> None:
    """Never die on printing an odd path or message (non-UTF-8 names, narrow consoles)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")


def _check(args: argparse.Namespace) -> int:
    from esper_lint.frontends.settings import Settings, check_selectors

    check_selectors(args.select, "--select")
    check_selectors(args.extend_select or None, "--extend-select")
    if args.ignore is not None and not args.ignore:
        raise ConfigError("--ignore names no code: give codes or prefixes such as ESP101, ESP1 or ALL")
    settings = Settings(args.config, select=args.select, extend_select=args.extend_select, ignore=args.ignore or ())
    # `--stdin-filename NAME` alone reads stdin too, as in ruff; `-` says so explicitly.
    paths: list[Path] = args.paths or [Path("-" if args.stdin_filename is not None else ".")]
    if Path("-") in paths or args.stdin_filename is not None:
        return _check_stdin(args, paths, settings)
    paths = _settings_files_as_folders(paths)
    if args.show_settings:
        for path in paths:
            from esper_lint.frontends.settings import describe_settings

            sys.stdout.write(describe_settings(path, settings.for_folder(path if os.path.isdir(path) else path.parent)))
        return EXIT_CLEAN
    gitignore = None
    if args.respect_gitignore:
        from esper_lint.frontends.gitignore import GitIgnore

        gitignore = GitIgnore()
    discovery = discover(paths, Config(), config_for=settings.for_folder, gitignore=gitignore)
    errors = list(discovery.errors)
    if args.add_templates and not (args.diff or args.fix):
        print("esper-lint: error: --add-templates needs --fix (to insert them) or --diff (to show them)", file=sys.stderr)
        return EXIT_ERROR
    if args.show_files:
        for path in discovery.files:
            print(display_path(path))
        for error in errors:
            print(f"esper-lint: error: {error}", file=sys.stderr)
        return EXIT_ERROR if errors else EXIT_CLEAN
    if not discovery.files and not errors and not args.quiet:
        print(f"esper-lint: warning: no Python files found under {', '.join(map(display_path, paths))}", file=sys.stderr)
    groups = _group_by_config(discovery.files, settings)
    if args.diff or args.fix or args.show_fixes:
        exit_code = EXIT_CLEAN
        for config, files in groups:
            fix_errors, group_exit = _apply_fixes(args, config, files)
            errors.extend(fix_errors)
            exit_code = max(exit_code, group_exit)
        if args.diff:
            for error in errors:
                print(f"esper-lint: error: {error}", file=sys.stderr)
            if errors:
                return EXIT_ERROR
            return EXIT_CLEAN if args.exit_zero else exit_code
    findings: list[Finding] = []
    real_paths = {display_path(path): path for path in discovery.files}
    # A declaration is stale only when no file of the project uses it. A run given only files (as
    # pre-commit runs it: the changed files, in chunks) cannot know that, so it leaves ESP103 out.
    covers_folders = any(os.path.isdir(path) for path in paths)
    declared: dict[str, tuple[Config, set[str]]] = {}
    for config in _configs_with_declarations(paths, settings, groups):
        declared.setdefault(str(config.source), (config, set()))
    for config, files in groups:
        used_names = declared[str(config.source)][1] if str(config.source) in declared else None
        for outcome in run_files(
            files, config, jobs=args.jobs, cache_dir=_cache_dir(args, config), with_references=used_names is not None
        ):
            if outcome.error is not None:
                errors.append(outcome.error)
            elif outcome.analysis is not None:
                findings.extend(outcome.analysis.findings)
                if used_names is not None:
                    used_names.update(reference.name for reference in outcome.analysis.references)
    for config, used in declared.values():
        from esper_lint.analysis.declarations import judge_declarations  # libcst: only with declarations

        judged = judge_declarations(
            config.private_apis, config.source, declarations_display(config.source), config.roots, used if covers_folders else None
        )
        findings.extend(f for f in judged if config.enabled(f.code, f.path))
    findings.sort(key=Finding.sort_key)
    if args.write_baseline is not None:
        from esper_lint.frontends.baseline import write_baseline

        count = write_baseline(args.write_baseline, findings, real_paths)
        print(f"esper-lint: wrote {count} finding(s) to {args.write_baseline}", file=sys.stderr)
        args.quiet = True  # the line above is the run's summary
        return _report(args, [], errors)
    if args.baseline is not None:
        from esper_lint.frontends.baseline import load_baseline, new_findings

        findings = new_findings(findings, args.baseline, load_baseline(args.baseline), real_paths)

    def located(display: str) -> tuple[bytes, Config] | None:
        from esper_lint.frontends.reading import read_regular_file

        path = real_paths.get(display)
        if path is None:
            return None
        try:
            return read_regular_file(str(path)), settings.for_file(path)
        except OSError:
            return None

    return _report(args, findings, errors, locate=located)


def _settings_files_as_folders(paths: list[Path]) -> list[Path]:
    """A configuration file named on the command line (pre-commit passes a changed pyproject.toml)
    stands for the project it configures: its declarations can change the verdict on any file."""
    from esper_lint.config import CONFIG_FILE_NAMES

    names = ("pyproject.toml", *CONFIG_FILE_NAMES)
    return [path.parent if path.name in names and os.path.isfile(path) else path for path in paths]


def _group_by_config(files: list[Path], settings: Settings) -> list[tuple[Config, list[Path]]]:
    groups: dict[int, tuple[Config, list[Path]]] = {}
    for path in files:
        config = settings.for_file(path)
        groups.setdefault(id(config), (config, []))[1].append(path)
    return list(groups.values())


def _configs_with_declarations(paths: list[Path], settings: Settings, groups: list[tuple[Config, list[Path]]]) -> list[Config]:
    """The configurations whose central declarations this run judges: those of the files checked,
    and those of the folders named (a declaration is judged even where no file uses it)."""
    configs = [config for config, _ in groups]
    configs.extend(settings.for_folder(path) for path in paths if os.path.isdir(path))
    return [config for config in configs if config.private_apis]


def _check_stdin(args: argparse.Namespace, paths: list[Path], settings: Settings) -> int:
    """`check -` (or `--stdin-filename NAME -`): lint the buffer on stdin as the file NAME, under
    NAME's configuration (its per-file-ignores and excludes too), for editors and formatters."""
    from esper_lint.engine import analyse_source

    if paths != [Path("-")]:
        raise ConfigError("reading stdin: give `-` as the only PATH (with --stdin-filename NAME to name the buffer)")
    if args.fix or args.diff or args.write_baseline or args.baseline:
        raise ConfigError("--fix, --diff and baselines work on files, not on stdin")
    name = args.stdin_filename or Path("stdin.py")
    config = settings.for_file(name)
    if args.show_settings:
        from esper_lint.frontends.settings import describe_settings

        sys.stdout.write(describe_settings(name, config))
        return EXIT_CLEAN
    data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode("utf-8", "surrogateescape")
    if args.stdin_filename is not None and config.is_excluded(name):
        return _report(args, [], [])
    display = display_path(name)
    analysis = analyse_source(data, display, config)
    findings = list(analysis.findings)
    if config.private_apis:
        from esper_lint.analysis.declarations import judge_declarations

        judged = judge_declarations(config.private_apis, config.source, declarations_display(config.source), config.roots, None)
        findings.extend(f for f in judged if config.enabled(f.code, f.path))
    return _report(args, findings, [], sources={display: data}, locate=lambda path: (data, config) if path == display else None)


def _apply_fixes(args: argparse.Namespace, config: Config, files: list[Path]) -> tuple[list[str], int]:
    """--diff prints the changes (exit 1 when any); --fix writes them, and the check that follows
    reports what is left (placeholders a person must fill keep ESP102 firing)."""
    from esper_lint.fix import fix_paths

    # Written through a symbolic link only into the project or a folder named on the command line.
    roots = [config.project_root, *(path for path in args.paths if os.path.isdir(path))]
    mode: Literal["fix", "diff"] = "fix" if args.fix else "diff"  # --show-fixes alone writes nothing
    run = fix_paths(
        files,
        config,
        mode=mode,
        unsafe=args.unsafe_fixes,
        jobs=args.jobs,
        roots=roots,
        add_templates=args.add_templates,
        show_withheld=args.show_fixes,
    )
    if args.show_fixes:
        _show_fixes(run, applied=args.fix)
    if args.diff:
        _write_bytes(run.diff)  # the files' own bytes, so that `patch` gives exactly the fixed files
    elif args.fix:
        print(f"esper-lint: {fix_summary(run)}", file=sys.stderr)
    return list(run.errors), EXIT_FINDINGS if run.changed_files else EXIT_CLEAN


def fix_summary(run: FixRun) -> str:
    """What --fix did, in words: fixes and templates counted apart, and what it left."""
    text = f"fixed {run.fixed} finding(s) in {run.changed_files} file(s)"
    if run.templates:
        text += f"; inserted {run.templates} template(s) to fill in"
    left = []
    unsafe = run.withheld(applicability="unsafe")
    if unsafe:
        left.append(f"{unsafe} more with --unsafe-fixes")
    shown = run.withheld(applicability="display-only")
    if shown:
        left.append(f"{shown} display-only fix(es) (--show-fixes lists them)")
    templates = run.withheld(template=True)
    if templates:
        left.append(f"{templates} template(s) with --add-templates")
    return text + (f"; not applied: {', '.join(left)}" if left else "")


def _show_fixes(run: FixRun, *, applied: bool) -> None:
    """One line per fix found: where, its code, what it does, and whether it was applied (or why not)."""
    done = "applied" if applied else "would apply"
    for item in run.files:
        rows = [(fix, done if not fix.template else f"template, {done}") for fix in item.applied]
        for fix in item.withheld:
            if fix.template:
                rows.append((fix, "template: with --add-templates"))
            elif fix.applicability == "unsafe":
                rows.append((fix, f"unsafe: with --unsafe-fixes; {fix.reason}"))
            else:
                rows.append((fix, f"display-only: {fix.reason}"))
        for fix, state in sorted(rows, key=lambda row: row[0].line):
            print(f"{item.display}:{fix.line}: {fix.code} {fix.description} [{state}]", file=sys.stderr)


def _write_bytes(data: bytes) -> None:
    sys.stdout.flush()
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (an embedding application): as close as text can get
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))
    else:
        buffer.write(data)
        buffer.flush()


def _cache_dir(args: argparse.Namespace, config: Config) -> Path | None:
    return None if args.no_cache else (args.cache_dir or config.project_root / CACHE_DIR_NAME)


# A finding's file as the fixer must read it: its bytes and its configuration (None: unknown).
_Locate = Callable[[str], "tuple[bytes, Config] | None"]


def _report(
    args: argparse.Namespace,
    findings: list[Finding],
    errors: list[str],
    sources: dict[str, bytes] | None = None,
    locate: _Locate | None = None,
) -> int:
    findings.sort(key=Finding.sort_key)
    output_format = getattr(args, "format", "text")
    if output_format in HUMAN_FORMATS and getattr(args, "command", None) == "check":
        _human_report(args, findings, sources or {}, locate)
    else:
        sys.stdout.write(REPORTERS[output_format](findings))
    for error in errors:
        print(f"esper-lint: error: {error}", file=sys.stderr)
    if errors:
        return EXIT_ERROR
    if findings and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _fixable_findings(findings: list[Finding], locate: _Locate | None) -> frozenset[tuple[str, int, str]]:
    """The findings `--fix` would fix (no `--unsafe-fixes`, no templates), as (path, line, code).

    Whether a swap or a documentation block is safe depends on the torch index, the range at that
    line and the scope, not on the code alone: the fixer itself is asked, for each file with a
    finding of a code that has a safe fix, so the marker and the count never promise a fix that
    `--fix` then withholds."""
    from esper_lint.frontends import summary

    codes = summary.fixable_codes()
    paths = sorted({f.path for f in findings if f.code in codes})
    if locate is None or not paths:
        return frozenset()
    from esper_lint.fix import fix_source

    keys: set[tuple[str, int, str]] = set()
    for path in paths:
        found = locate(path)
        if found is None:
            continue
        outcome = fix_source(found[0], path, found[1])
        if outcome.error is None:
            keys.update((path, fix.line, fix.code) for fix in outcome.fixes)
    return frozenset(keys)


def _human_report(args: argparse.Namespace, findings: list[Finding], sources: dict[str, bytes], locate: _Locate | None) -> None:
    """concise (text) or full findings on stdout, `--statistics` instead of them, and the summary on
    stderr (not with --quiet)."""
    from esper_lint.frontends import summary

    # Asking the fixer costs a run with findings about a third more: it is asked where the answer
    # is shown, and for the summary only when a person reads stderr (a terminal), not in a
    # pre-commit hook or CI log, which then get "Found N findings." without a count to promise.
    marked = args.statistics or args.format == "full" or args.show_fixes
    counted = not args.quiet and summary.is_terminal(sys.stderr)
    fixable = _fixable_findings(findings, locate) if findings and (marked or counted) else frozenset()
    paint = summary.Painter(summary.use_colour(sys.stdout))
    if args.statistics:
        sys.stdout.write(summary.statistics_report(findings, fixable))
    elif args.format == "full":

        def lines_of(path: str) -> list[str] | None:
            if path in sources:
                return summary.decoded_source_lines(sources[path])
            return summary.read_lines_for(path)

        sys.stdout.write(summary.full_report(findings, paint, fixable, lines_of))
    else:
        sys.stdout.write(summary.concise_report(findings, paint, fixable if args.show_fixes else frozenset()))
    if not args.quiet:
        sys.stdout.flush()
        summary.write_summary(summary.summary_line(findings, fixable, summary.Painter(summary.use_colour(sys.stderr))))


def _verify(args: argparse.Namespace) -> int:
    from esper_lint.verify import verify_paths
    from esper_lint.verify.installed import TorchNotInstalled

    paths: list[Path] = args.paths or [Path(".")]
    config = load_config(paths, args.config)
    try:
        result = verify_paths(paths, config, jobs=args.jobs, cache_dir=_cache_dir(args, config))
    except TorchNotInstalled as exc:
        print(f"esper-lint: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    if args.format == "text":
        checked = f"{result.checked_names} private torch name(s) checked against torch {result.torch_version}"
        if result.checked_calls:
            checked += f", {result.checked_calls} call(s) bound to its signatures"
        print(f"esper-lint verify: {checked}", file=sys.stderr)
    for note in result.build_absent:  # not failures: the builds the code targets have these names
        print(f"esper-lint verify: note: {note.path}:{note.line}:{note.column}: {note.message}", file=sys.stderr)
    return _report(args, result.findings, result.errors)


def _inventory(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 when files could not be read (the report covers the others)."""
    from esper_lint.analysis.knowledge import TorchKnowledge
    from esper_lint.frontends.inventory import RENDERERS, build_inventory

    paths: list[Path] = args.paths or [Path(".")]
    config = load_config(paths, args.config)
    from esper_lint.frontends.gitignore import GitIgnore

    discovery = discover(paths, config, gitignore=GitIgnore())  # the folder walk skips what git ignores, as check's does
    errors = list(discovery.errors)
    uses: list[tuple[str, ReferenceRecord]] = []
    for outcome in run_files(discovery.files, config, jobs=args.jobs, cache_dir=_cache_dir(args, config), with_references=True):
        if outcome.error is not None:
            errors.append(outcome.error)
        elif outcome.analysis is not None:
            uses.extend(
                (outcome.analysis.path, reference)
                for reference in outcome.analysis.references
                if config.check_typing_only or not reference.typing_only
            )
    sys.stdout.write(RENDERERS[args.format](build_inventory(uses, TorchKnowledge(config.torch_versions))))
    for error in errors:
        print(f"esper-lint: error: {error}", file=sys.stderr)
    return EXIT_ERROR if errors else EXIT_CLEAN


def _explain(name: str, output_format: str) -> int:
    """Exit 0 when the index knows the name (or a module above it), 1 when it knows nothing."""
    from esper_lint.torch_index.explain import explain, explain_data

    name = name.strip()
    if re.fullmatch(r"ESP\d{3}", name, re.IGNORECASE):
        # A rule code, not a torch name: `rule` documents rules.
        print(f"esper-lint: `explain` describes torch names; {name} is a rule code, so this is `esper-lint rule {name}`:", file=sys.stderr)
        return _rule(name)
    if not name or not all(part.isidentifier() for part in name.split(".")):
        print(f"esper-lint: error: {name!r} is not a dotted Python name", file=sys.stderr)
        return EXIT_ERROR
    print(explain(name, output_format))
    return EXIT_CLEAN if explain_data(name)["matched"] is not None else EXIT_FINDINGS


def _rule(code: str | None, *, table: bool = False, every: bool = False) -> int:
    from esper_lint import catalog

    if (table + every + (code is not None)) != 1:
        print("esper-lint: error: `rule` takes a code (e.g. ESP101), --all or --table", file=sys.stderr)
        return EXIT_ERROR
    if table:
        print(catalog.codes_table(), end="")
        return EXIT_CLEAN
    rules = catalog.all_rules()
    if every:
        print("\n".join(_rule_text(chosen) for chosen in rules.values()), end="")
        return EXIT_CLEAN
    assert code is not None
    if code.upper() not in rules:
        print(f"esper-lint: error: unknown rule {code!r} (known: {', '.join(rules)})", file=sys.stderr)
        return EXIT_ERROR
    print(_rule_text(rules[code.upper()]), end="")
    return EXIT_CLEAN


def _rule_text(chosen: Any) -> str:
    body = chosen.document.split(chr(10), 1)[1]
    return f"# {chosen.code}: {chosen.name}\n\n{chosen.summary}\n{body}\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
