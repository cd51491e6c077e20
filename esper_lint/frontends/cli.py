"""`esper-lint`: the command line front end over the engine.

Exit codes: 0 no findings, 1 findings, 2 usage, configuration or I/O error, 3 internal error (a bug
in esper-lint: one stderr line names the file being processed and the error), 130 interrupted
(SIGINT), 143 terminated (SIGTERM). Every message is on stderr; no other code and no traceback
ever ends a run (ESPER_LINT_DEBUG=1 adds the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal, NoReturn

from esper_lint import __version__
from esper_lint.config import Config, ConfigError, load_config
from esper_lint.frontends.discovery import declarations_display, discover, display_path
from esper_lint.frontends.errors import InternalError, Stopped, describe
from esper_lint.frontends.output import REPORTERS
from esper_lint.frontends.runner import CACHE_DIR_NAME, run_files
from esper_lint.model import Finding, ReferenceRecord

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


def _add_check(commands: Any) -> None:
    check = commands.add_parser("check", help="lint Python files for private torch API use")
    check.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="files or folders (default: .)")
    check.add_argument("--format", choices=sorted(REPORTERS), default="text", help="output format (default: text)")
    check.add_argument("--select", type=_codes, help="comma-separated codes or prefixes to enable (replaces the configured select)")
    check.add_argument("--ignore", type=_codes, help="comma-separated codes or prefixes to disable (added to the configured ignore)")
    check.add_argument("--config", type=Path, help="use this pyproject.toml instead of searching upward")
    check.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    fixing = check.add_mutually_exclusive_group()
    fixing.add_argument(
        "--fix", action="store_true", help="apply the safe fixes in place (ESP301, ESP101 templates), then report what remains"
    )
    fixing.add_argument(
        "--diff", action="store_true", help="print the fixes as a unified diff and change nothing (exit 1 when there is something to fix)"
    )
    check.add_argument("--unsafe-fixes", action="store_true", help="also apply fixes that delete a person's words (ESP103: stale blocks)")
    check.add_argument("--write-baseline", type=Path, metavar="FILE", help="record today's findings in FILE and exit 0")
    check.add_argument("--baseline", type=Path, metavar="FILE", help="report only findings that are not in FILE")
    check.add_argument("-j", "--jobs", type=_positive, default=None, help="worker processes (default: all cores)")
    check.add_argument("--no-cache", action="store_true", help="do not read or write the result cache")
    check.add_argument("--cache-dir", type=Path, default=None, help=f"cache folder (default: {CACHE_DIR_NAME} in the project root)")


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


_COMMANDS = {"check": _add_check, "verify": _add_verify, "inventory": _add_inventory, "explain": _add_explain, "rule": _add_rule}


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
            return _rule(args.code, table=args.table)
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


def effective_config(args: argparse.Namespace, paths: Sequence[Path]) -> Config:
    config = load_config(paths, args.config)
    if args.select is not None:
        config = replace(config, select=tuple(args.select))
    if args.ignore is not None:
        config = replace(config, ignore=(*config.ignore, *args.ignore))
    return config


def _check(args: argparse.Namespace) -> int:
    paths: list[Path] = args.paths or [Path(".")]
    config = effective_config(args, paths)
    discovery = discover(paths, config)
    errors = list(discovery.errors)
    if args.diff or args.fix:
        fix_errors, exit_code = _apply_fixes(args, config, discovery.files)
        errors.extend(fix_errors)
        if args.diff:
            for error in errors:
                print(f"esper-lint: error: {error}", file=sys.stderr)
            return EXIT_ERROR if errors else exit_code
    findings: list[Finding] = []
    declarations = config.private_apis
    used_names: set[str] = set()
    real_paths = {display_path(path): path for path in discovery.files}
    for outcome in run_files(
        discovery.files, config, jobs=args.jobs, cache_dir=_cache_dir(args, config), with_references=bool(declarations)
    ):
        if outcome.error is not None:
            errors.append(outcome.error)
        elif outcome.analysis is not None:
            findings.extend(outcome.analysis.findings)
            used_names.update(reference.name for reference in outcome.analysis.references)
    if declarations:
        from esper_lint.analysis.declarations import judge_declarations  # libcst: only with declarations

        # A declaration is stale only when no file of the project uses it. A run given only files (as
        # pre-commit runs it: the changed files, in chunks) cannot know that, so it leaves ESP103 out.
        covers_folders = any(os.path.isdir(path) for path in paths)
        judged = judge_declarations(
            declarations,
            config.source,
            declarations_display(config.source),
            config.roots,
            used_names if covers_folders else None,
        )
        findings.extend(f for f in judged if config.enabled(f.code, f.path))
    findings.sort(key=Finding.sort_key)
    if args.write_baseline is not None:
        from esper_lint.frontends.baseline import write_baseline

        count = write_baseline(args.write_baseline, findings, real_paths)
        print(f"esper-lint: wrote {count} finding(s) to {args.write_baseline}", file=sys.stderr)
        return _report(args, [], errors)
    if args.baseline is not None:
        from esper_lint.frontends.baseline import load_baseline, new_findings

        findings = new_findings(findings, args.baseline, load_baseline(args.baseline), real_paths)
    return _report(args, findings, errors)


def _apply_fixes(args: argparse.Namespace, config: Config, files: list[Path]) -> tuple[list[str], int]:
    """--diff prints the changes (exit 1 when any); --fix writes them, and the check that follows
    reports what is left (placeholders a person must fill keep ESP102 firing)."""
    from esper_lint.fix import fix_paths

    # Written through a symbolic link only into the project or a folder named on the command line.
    roots = [config.project_root, *(path for path in args.paths if os.path.isdir(path))]
    mode: Literal["fix", "diff"] = "diff" if args.diff else "fix"
    run = fix_paths(files, config, mode=mode, unsafe=args.unsafe_fixes, jobs=args.jobs, roots=roots)
    if args.diff:
        _write_bytes(run.diff)  # the files' own bytes, so that `patch` gives exactly the fixed files
    else:
        print(f"esper-lint: fixed {run.fixed} finding(s) in {run.changed_files} file(s)", file=sys.stderr)
    return list(run.errors), EXIT_FINDINGS if run.changed_files else EXIT_CLEAN


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


def _report(args: argparse.Namespace, findings: list[Finding], errors: list[str]) -> int:
    findings.sort(key=Finding.sort_key)
    sys.stdout.write(REPORTERS[args.format](findings))
    for error in errors:
        print(f"esper-lint: error: {error}", file=sys.stderr)
    if errors:
        return EXIT_ERROR
    if findings and not args.exit_zero:
        return EXIT_FINDINGS
    return EXIT_CLEAN


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
    return _report(args, result.findings, result.errors)


def _inventory(args: argparse.Namespace) -> int:
    """Exit 0 with the report; 2 when files could not be read (the report covers the others)."""
    from esper_lint.analysis.knowledge import TorchKnowledge
    from esper_lint.frontends.inventory import RENDERERS, build_inventory

    paths: list[Path] = args.paths or [Path(".")]
    config = load_config(paths, args.config)
    discovery = discover(paths, config)
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
    if not name or not all(part.isidentifier() for part in name.split(".")):
        print(f"esper-lint: error: {name!r} is not a dotted Python name", file=sys.stderr)
        return EXIT_ERROR
    print(explain(name, output_format))
    return EXIT_CLEAN if explain_data(name)["matched"] is not None else EXIT_FINDINGS


def _rule(code: str | None, *, table: bool = False) -> int:
    from esper_lint import catalog

    if table == (code is not None):
        print("esper-lint: error: `rule` takes a code (e.g. ESP101) or --table", file=sys.stderr)
        return EXIT_ERROR
    if table:
        print(catalog.codes_table(), end="")
        return EXIT_CLEAN
    assert code is not None
    rules = catalog.all_rules()
    if code.upper() not in rules:
        print(f"esper-lint: error: unknown rule {code!r} (known: {', '.join(rules)})", file=sys.stderr)
        return EXIT_ERROR
    chosen = rules[code.upper()]
    print(f"# {chosen.code}: {chosen.name}\n\n{chosen.summary}\n{chosen.document.split(chr(10), 1)[1]}")
    return EXIT_CLEAN


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
