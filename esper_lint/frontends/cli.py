"""`esper-lint`: the command line front end over the engine.

Exit codes: 0 no findings, 1 findings, 2 usage, configuration or I/O error, 3 internal error (a bug
in esper-lint: one stderr line names the file being processed and the error), 130 interrupted
(SIGINT), 143 terminated (SIGTERM). Every message is on stderr; no other code and no traceback
ever ends a run (ESPER_LINT_DEBUG=1 adds the traceback of an internal error).
"""

from __future__ import annotations

import os
import re
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal, NoReturn

from esper_lint.config import Config, ConfigError, load_config
from esper_lint.frontends import paths as strpaths
from esper_lint.frontends.discovery import declarations_display, discover, display_path
from esper_lint.frontends.errors import InternalError, Stopped, describe
from esper_lint.frontends.options import HUMAN_FORMATS, Arguments, plain_check_arguments
from esper_lint.frontends.output import REPORTERS
from esper_lint.frontends.runner import CACHE_DIR_NAME, run_files
from esper_lint.model import Finding, ReferenceRecord

if TYPE_CHECKING:  # the fixer (libcst) is imported only when a fix is asked for
    from pathlib import Path  # and pathlib only off a pre-commit run's path (frontends/paths.py)

    from esper_lint.fix import FixRun
    from esper_lint.frontends.settings import Settings

EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
EXIT_INTERRUPTED, EXIT_TERMINATED = 128 + signal.SIGINT, 128 + signal.SIGTERM  # 130, 143: the shell's convention


def main(argv: Sequence[str] | None = None) -> int:
    _tolerant_output()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = plain_check_arguments(arguments)
    if args is None:
        from esper_lint.frontends.arguments import parse_arguments  # argparse: only for a command line with options

        args = parse_arguments(arguments)
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


def entry() -> NoReturn:
    """The `esper-lint` console script (and `python -m esper_lint`): `main()`, then exit without
    the interpreter's last garbage collections. While it tears the modules down at exit, CPython
    runs full collections over every object still tracked: after a file has been judged (libcst's
    classes, the torch index, the trees' leftovers) they cost a pre-commit run about 50 ms, more
    than judging a small file. Freezing moves those objects out of the collector's view. Nothing is
    lost: every file has been written and closed, the output streams are flushed by the normal
    exit, and atexit handlers still run. `main()` itself stays a plain function for callers that go on running."""
    code = main()
    import gc

    gc.freeze()
    sys.exit(code)


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
    files removed, and the exit code says so. Only the main thread can set signal handlers: on
    another (`main()` called from a thread) `signal.signal` refuses, and SIGTERM keeps its handler."""

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    try:
        previous = signal.signal(signal.SIGTERM, stop)
    except ValueError:  # not the main thread
        installed = False
    else:
        installed = True
    if not installed:
        yield
        return
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


def _run(args: Arguments) -> int:
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


def _check(args: Arguments) -> int:
    from esper_lint.frontends.settings import Settings, check_selectors

    check_selectors(args.select, "--select")
    check_selectors(args.extend_select or None, "--extend-select")
    if args.ignore is not None and not args.ignore:
        raise ConfigError("--ignore names no code: give codes or prefixes such as ESP101, ESP1 or ALL")
    settings = Settings(args.config, select=args.select, extend_select=args.extend_select, ignore=args.ignore or ())
    # `--stdin-filename NAME` alone reads stdin too, as in ruff; `-` says so explicitly. The paths
    # are strings spelled as pathlib spells them (options.plain_check_arguments, arguments.py): see frontends/paths.py.
    paths: list[str] = args.paths or ["-" if args.stdin_filename is not None else "."]
    if "-" in paths or args.stdin_filename is not None:
        return _check_stdin(args, paths, settings)
    paths = _settings_files_as_folders(paths)
    if args.show_settings:
        for path in paths:
            from esper_lint.frontends.settings import describe_settings

            sys.stdout.write(describe_settings(path, settings.for_folder(path if os.path.isdir(path) else strpaths.parent(path))))
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
    groups = settings.group_files(discovery.files)
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
    folders = [path for path in paths if os.path.isdir(path)]  # one stat per path (a warm run is mostly stats)
    covers_folders = bool(folders)
    declared: dict[str, tuple[Config, set[str]]] = {str(c.source_str): (c, set()) for c in settings.declaring(groups, folders)}
    for config, files in groups:
        used_names = declared[str(config.source_str)][1] if str(config.source_str) in declared else None
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

        count = write_baseline(args.write_baseline, findings, _as_paths(real_paths))
        print(f"esper-lint: wrote {count} finding(s) to {args.write_baseline}", file=sys.stderr)
        args.quiet = True  # the line above is the run's summary
        return _report(args, [], errors)
    if args.baseline is not None:
        from esper_lint.frontends.baseline import load_baseline, new_findings

        findings = new_findings(findings, args.baseline, load_baseline(args.baseline), _as_paths(real_paths))

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


def _as_paths(real_paths: dict[str, str]) -> dict[str, Path]:
    """The files by displayed path, as the baseline's Paths (pathlib: only with a baseline)."""
    from pathlib import Path

    return {display: Path(path) for display, path in real_paths.items()}


def _settings_files_as_folders(paths: list[str]) -> list[str]:
    """A configuration file named on the command line (pre-commit passes a changed pyproject.toml)
    stands for the project it configures: its declarations can change the verdict on any file."""
    from esper_lint.config import CONFIG_FILE_NAMES

    names = ("pyproject.toml", *CONFIG_FILE_NAMES)
    return [strpaths.parent(path) if strpaths.name(path) in names and os.path.isfile(path) else path for path in paths]


def _check_stdin(args: Arguments, paths: list[str], settings: Settings) -> int:
    """`check -` (or `--stdin-filename NAME -`): lint the buffer on stdin as the file NAME, under
    NAME's configuration (its per-file-ignores and excludes too), for editors and formatters."""
    from esper_lint.engine import analyse_source

    if paths != ["-"]:
        raise ConfigError("reading stdin: give `-` as the only PATH (with --stdin-filename NAME to name the buffer)")
    if args.fix or args.diff or args.write_baseline or args.baseline:
        raise ConfigError("--fix, --diff and baselines work on files, not on stdin")
    name = strpaths.normalized(args.stdin_filename) if args.stdin_filename is not None else "stdin.py"
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


def _apply_fixes(args: Arguments, config: Config, files: list[str]) -> tuple[list[str], int]:
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


def _cache_dir(args: Arguments, config: Config) -> strpaths.StrPath | None:
    return None if args.no_cache else (args.cache_dir or strpaths.join(config.project_root_str, CACHE_DIR_NAME))


# A finding's file as the fixer must read it: its bytes and its configuration (None: unknown).
_Locate = Callable[[str], "tuple[bytes, Config] | None"]


def _report(
    args: Arguments,
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


def _human_report(args: Arguments, findings: list[Finding], sources: dict[str, bytes], locate: _Locate | None) -> None:
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


def _verify(args: Arguments) -> int:
    from pathlib import Path

    from esper_lint.frontends.settings import Settings
    from esper_lint.verify import verify_paths
    from esper_lint.verify.installed import TorchNotInstalled

    paths: list[Path] = args.paths or [Path(".")]
    config = load_config(paths, args.config)
    settings = Settings(args.config)  # each file under its own configuration, as `check` reads them
    try:
        result = verify_paths(
            paths, config, jobs=args.jobs, settings=settings, cache_dir_for=lambda group: _cache_dir(args, group)
        )
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


def _inventory(args: Arguments) -> int:
    """Exit 0 with the report; 2 when files could not be read (the report covers the others)."""
    from pathlib import Path

    from esper_lint.analysis.knowledge import TorchKnowledge
    from esper_lint.frontends.gitignore import GitIgnore
    from esper_lint.frontends.inventory import RENDERERS, build_inventory
    from esper_lint.frontends.settings import Settings

    paths: list[Path] = args.paths or [Path(".")]
    config = load_config(paths, args.config)  # the report's supported range: that of the paths' project
    settings = Settings(args.config)  # each file's references found under its own configuration, as `check` finds them
    # the folder walk skips what git ignores, and each folder's `exclude`, as check's does
    discovery = discover(paths, config, config_for=settings.for_folder, gitignore=GitIgnore())
    errors = list(discovery.errors)
    uses: list[tuple[str, ReferenceRecord]] = []
    for group_config, files in settings.group_files(discovery.files):
        for outcome in run_files(files, group_config, jobs=args.jobs, cache_dir=_cache_dir(args, group_config), with_references=True):
            if outcome.error is not None:
                errors.append(outcome.error)
            elif outcome.analysis is not None:
                uses.extend(
                    (outcome.analysis.path, reference)
                    for reference in outcome.analysis.references
                    if group_config.check_typing_only or not reference.typing_only
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
    entry()
