"""Hostile files and processes, end to end (issue 18): unreadable folders, FIFOs and devices named
`*.py`, crashes, signals and killed parents, leftovers of killed `--fix` runs, links out of the
project, hard links, owners, byte-exact diffs, and a project's own `torch/`.

The suite runs as root in CI, and root reads any file whatever its mode: the permission cases run
the command with the privilege to bypass file modes dropped (see `unprivileged`).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from esper_lint.config import Config
from esper_lint.fix import files as fix_files
from esper_lint.fix import fix_paths, write_atomically

BAD = "import torch\ntorch._x\n"
NORMAL = "ok.py:2:1: ESP101 private API `torch._x`"
EXIT_CLEAN, EXIT_FINDINGS, EXIT_ERROR, EXIT_INTERNAL = 0, 1, 2, 3
COMMAND = [sys.executable, "-m", "esper_lint"]
# Every subcommand that reads the tree: (arguments, what shows that ok.py beside the bad thing was read).
READERS = {
    "check": (["check", "--no-cache"], NORMAL),
    "check-cached": (["check"], NORMAL),
    # ok.py's only fix is a template (torch._x is unknown to the index): asked for with --add-templates.
    "fix": (["check", "--no-cache", "--fix", "--add-templates"], "ok.py:"),
    "diff": (["check", "--no-cache", "--diff", "--add-templates"], "+++ ok.py"),
    "verify": (["verify", "--no-cache"], "ok.py:2:1: ESP203"),
    "inventory": (["inventory", "--no-cache"], "torch._x"),
}


def no_traceback(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout, result.stderr
    return result


def run(cwd: Path, *args: str, prefix: tuple[str, ...] = (), timeout: int = 120) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*prefix, *COMMAND, *args], cwd=cwd, capture_output=True, text=True, errors="backslashreplace", timeout=timeout
    )
    return no_traceback(result)


def tree(folder: Path) -> Path:
    (folder / "ok.py").write_text(BAD, encoding="utf-8")
    return folder


# ----------------------------------------------------------------------------- dropping privileges
_CAPABILITIES = "dac_override,dac_read_search"  # what lets root ignore file modes
DROPPERS = {
    "setpriv-caps": ["setpriv", f"--inh-caps=-{_CAPABILITIES.replace(',', ',-')}",
                     f"--bounding-set=-{_CAPABILITIES.replace(',', ',-')}"],
    "capsh": ["capsh", "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", 'exec "$0" "$@"'],
    "setpriv-nobody": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
    "runuser-nobody": ["runuser", "-u", "nobody", "--"],
}


def _denied_with(prefix: list[str], probe: Path) -> bool:
    """Whether esper-lint can run under `prefix` and is refused a mode-000 file."""
    script = f"import esper_lint, sys\ntry:\n    open({str(probe)!r}).close()\nexcept PermissionError:\n    sys.exit(42)\n"
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", script], capture_output=True, timeout=60, cwd=probe.parent)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 42


@dataclass(frozen=True)
class Unprivileged:
    prefix: tuple[str, ...]  # the command prefix
    uid: int | None  # the user it runs as, when it switches user


@pytest.fixture(scope="session")
def unprivileged(tmp_path_factory: pytest.TempPathFactory) -> Unprivileged:
    """How to run a command for which file modes are enforced: as is for a user other than root;
    for root, under the first tool that drops the capabilities (or switches to nobody) and still
    runs esper-lint."""
    folder = Path(tempfile.mkdtemp(prefix="esper-lint-probe-"))
    try:
        folder.chmod(0o755)
        probe = folder / "secret"
        probe.write_text("x")
        probe.chmod(0)
        if os.geteuid() != 0:
            if not _denied_with([], probe):
                pytest.skip("file modes are not enforced for this user (CAP_DAC_OVERRIDE?), and it is not root")
            return Unprivileged((), None)
        tried = []
        for name, prefix in DROPPERS.items():
            if shutil.which(prefix[0]) is None:
                tried.append(f"{name}: {prefix[0]} not installed")
            elif _denied_with(prefix, probe):
                return Unprivileged(tuple(prefix), 65534 if name.endswith("nobody") else None)
            else:
                tried.append(f"{name}: did not deny a mode-000 file, or could not run esper-lint")
        pytest.fail("running as root, and no way to drop the privilege to ignore file modes works: " + "; ".join(tried))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def open_tmp(tmp_path: Path, unprivileged: Unprivileged) -> Iterator[Path]:
    """A folder for the tree the unprivileged command works on: pytest's own, unless the command
    runs as another user, who gets one of its own in the system's temporary folder (pytest's is
    private to root). Emptied afterwards whatever modes the test left inside."""
    if unprivileged.uid is None:
        folder = tmp_path
    else:
        folder = Path(tempfile.mkdtemp(prefix="esper-lint-hostile-"))
        os.chown(folder, unprivileged.uid, unprivileged.uid)
    yield folder
    for path in folder.rglob("*"):
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) | stat.S_IRWXU)
    if folder != tmp_path:
        shutil.rmtree(folder, ignore_errors=True)


def owned_by(user: Unprivileged, *paths: Path) -> None:
    """Give the files to the user the command runs as (who must own what --fix rewrites)."""
    if user.uid is not None:
        for path in paths:
            for item in (path, *path.rglob("*")) if path.is_dir() else (path,):
                os.lchown(item, user.uid, user.uid)


# ----------------------------------------------------------------------------- item 4: unreadable folders and files
@pytest.mark.parametrize("mode", [0o000, 0o444, 0o111], ids=["no-access", "list-only", "search-only"])
@pytest.mark.parametrize("reader", sorted(READERS))
def test_unreadable_folder_is_an_error_line_and_the_run_goes_on(
    open_tmp: Path, unprivileged: Unprivileged, reader: str, mode: int
) -> None:
    """A root-owned docker volume in the repository aborted check, --fix, verify and inventory with
    a PermissionError traceback, and reported nothing."""
    tree(open_tmp)
    locked = open_tmp / "locked"
    (locked / "inner").mkdir(parents=True)
    (locked / "b.py").write_text(BAD, encoding="utf-8")
    (locked / "inner" / "c.py").write_text(BAD, encoding="utf-8")
    owned_by(unprivileged, open_tmp / "ok.py")
    locked.chmod(mode)
    args, shows_ok = READERS[reader]
    result = run(open_tmp, *args, prefix=unprivileged.prefix)
    assert result.returncode == EXIT_ERROR, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("esper-lint: error:")]
    assert errors and all("locked" in line and "Permission denied" in line for line in errors), result.stderr
    assert shows_ok in result.stdout
    if reader == "fix":
        assert (open_tmp / "ok.py").read_text(encoding="utf-8") != BAD


def test_unreadable_file_and_folder_named_on_the_command_line(open_tmp: Path, unprivileged: Unprivileged) -> None:
    """The pre-commit hook names the files: a file it cannot read, or one in a folder it cannot
    search, is an error line, and the others are checked."""
    tree(open_tmp)
    (open_tmp / "secret.py").write_text(BAD, encoding="utf-8")
    (open_tmp / "secret.py").chmod(0)
    locked = open_tmp / "locked"
    locked.mkdir()
    (locked / "b.py").write_text(BAD, encoding="utf-8")
    locked.chmod(0)
    owned_by(unprivileged, open_tmp / "ok.py")
    for extra in ((), ("--fix",), ("--diff",)):
        args = ("check", "--no-cache", *extra, "secret.py", "locked/b.py", "locked", "ok.py")
        result = run(open_tmp, *args, prefix=unprivileged.prefix)
        assert result.returncode == EXIT_ERROR
        assert "secret.py: cannot read: Permission denied" in result.stderr
        assert f"locked{os.sep}b.py: cannot read: Permission denied" in result.stderr
        assert "locked: cannot read directory: Permission denied" in result.stderr


# ----------------------------------------------------------------------------- item 5: FIFOs and devices
def special_files(folder: Path) -> list[str]:
    os.mkfifo(folder / "fifo.py")  # a plain open() blocks until a writer comes: forever
    names = ["fifo.py"]
    for device in ("/dev/zero", "/dev/urandom"):  # read until memory runs out
        if os.path.exists(device):
            name = f"{Path(device).name}.py"
            (folder / name).symlink_to(device)
            names.append(name)
    return names


@pytest.mark.parametrize("reader", sorted(READERS))
def test_fifos_and_devices_in_a_walked_tree_are_not_read(tmp_path: Path, reader: str) -> None:
    names = special_files(tree(tmp_path))
    args, shows_ok = READERS[reader]
    result = run(tmp_path, *args, timeout=60)
    assert result.returncode == EXIT_ERROR
    for name in names:
        assert f"esper-lint: error: {name}: not read: not a regular file" in result.stderr, result.stderr
    assert shows_ok in result.stdout


@pytest.mark.parametrize("extra", [(), ("--fix",), ("--diff",)], ids=["check", "fix", "diff"])
def test_fifos_and_devices_named_on_the_command_line_are_not_read(tmp_path: Path, extra: tuple[str, ...]) -> None:
    """As the pre-commit hook runs it: `esper-lint check FILE ...`."""
    names = special_files(tree(tmp_path))
    result = run(tmp_path, "check", "--no-cache", *extra, *names, "ok.py", timeout=60)
    assert result.returncode == EXIT_ERROR
    for name in names:
        assert f"{name}: not a regular file or directory" in result.stderr


def test_a_file_swapped_for_a_fifo_after_discovery_is_not_read(tmp_path: Path) -> None:
    """The check is made on the open file: what discovery saw can change before the read."""
    script = textwrap.dedent(
        """
        import os, sys
        from pathlib import Path
        from esper_lint.config import Config
        from esper_lint.fix import fix_paths, write_atomically
        from esper_lint.frontends.runner import run_files
        fifo = Path("swapped.py")
        os.mkfifo(fifo)
        outcomes = list(run_files([fifo], Config(), jobs=1))
        print(outcomes[0].error)
        print(fix_paths([fifo], Config(), mode="fix").errors[0])
        try:
            write_atomically(fifo, b"new", b"")
        except OSError as exc:
            print("write:", exc.strerror)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "swapped.py: cannot read: not a regular file (a FIFO)",
        "swapped.py: cannot read: not a regular file (a FIFO)",
        "write: not a regular file (a FIFO)",
    ]


# ----------------------------------------------------------------------------- item 12: a crash is never "findings"
def crashing(where: str, code: str) -> list[str]:
    """A Python command that runs the CLI with `where` (module:function) replaced by one that raises."""
    module, function = where.split(":")
    return [
        sys.executable,
        "-c",
        textwrap.dedent(
            f"""
            import sys
            import {module} as target
            def boom(*args, **kwargs):
                raise RuntimeError("boom\\nsecond line")
            target.{function} = boom
            from esper_lint.frontends.cli import main
            sys.exit(main(sys.argv[1:]))
            """
        ),
        *shlex.split(code),
    ]


@pytest.mark.parametrize(
    ("where", "args", "files"),
    [
        ("esper_lint.engine:analyse_source", "check --no-cache -j 1", 1),
        ("esper_lint.engine:analyse_source", "check --no-cache -j 2", 20),  # in the workers
        ("esper_lint.engine:analyse_source", "inventory --no-cache -j 1", 1),
        ("esper_lint.engine:analyse_source", "verify --no-cache -j 1", 1),
        ("esper_lint.fix.files:fix_source", "check --no-cache --fix -j 1", 1),
        ("esper_lint.fix.files:fix_source", "check --no-cache --diff -j 2", 20),
    ],
)
def test_an_internal_error_exits_3_naming_the_file(tmp_path: Path, where: str, args: str, files: int) -> None:
    """Every uncaught exception used to exit 1, the code of "findings"."""
    for number in range(files):
        (tmp_path / f"m{number:02}.py").write_text(BAD, encoding="utf-8")
    started = time.monotonic()
    result = no_traceback(subprocess.run(crashing(where, args), cwd=tmp_path, capture_output=True, text=True, timeout=120))
    assert result.returncode == EXIT_INTERNAL, result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith("esper-lint: internal error while processing m") and ".py: RuntimeError: boom second line (" in line
    assert time.monotonic() - started < 60


def test_an_internal_error_outside_a_file_exits_3(tmp_path: Path) -> None:
    tree(tmp_path)
    result = no_traceback(
        subprocess.run(
            crashing("esper_lint.frontends.cli:discover", "check --no-cache"), cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
    )
    assert result.returncode == EXIT_INTERNAL
    assert result.stderr.startswith("esper-lint: internal error (not while processing a file): RuntimeError: boom")
    debug = subprocess.run(
        crashing("esper_lint.frontends.cli:discover", "check --no-cache"),
        cwd=tmp_path, capture_output=True, text=True, timeout=60, env={**os.environ, "ESPER_LINT_DEBUG": "1"},
    )
    assert debug.returncode == EXIT_INTERNAL and "Traceback" in debug.stderr


def test_an_internal_error_in_process_is_exit_3(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from esper_lint import engine
    from esper_lint.frontends import cli

    def boom(*args: object, **kwargs: object) -> None:
        raise ValueError("no")

    tree(tmp_path)
    monkeypatch.setattr(engine, "analyse_source", boom)  # the runner imports it when a file needs it
    monkeypatch.chdir(tmp_path)
    assert cli.main(["check", "--no-cache", "-j", "1"]) == EXIT_INTERNAL
    assert capsys.readouterr().err.startswith("esper-lint: internal error while processing ok.py: ValueError: no")


def test_flake8_reports_an_internal_error_as_a_failure_never_as_a_finding(tmp_path: Path) -> None:
    """flake8 has one failure code (1) for findings and failed plugins alike: the plugin raises
    flake8's PluginExecutionFailed, which flake8 prints as such, and no ESP line appears."""
    tree(tmp_path)
    script = textwrap.dedent(
        """
        import sys
        import esper_lint.frontends.flake8_plugin as plugin
        def boom(*args, **kwargs):
            raise RuntimeError("boom")
        plugin.analyse_source = boom
        from flake8.main.cli import main
        sys.exit(main(["--select", "ESP", "--isolated", "-j", "1", "ok.py"]))
        """
    )
    result = no_traceback(subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120))
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "ok.py: \"ESP\" failed during execution due to InternalError('ok.py', 'RuntimeError: boom')" in output
    assert " ESP" not in output.replace('"ESP"', "")


# ----------------------------------------------------------------------------- item 13: workers and signals
def slow_tree(folder: Path, files: int = 40) -> Path:
    """Work that takes minutes on two workers, seconds a file: long enough to be stopped in the middle."""
    body = "".join(f"x{i} = torch._foo_{i % 50}(torch.ones({i}))\n" for i in range(9000))
    for number in range(files):
        (folder / f"f{number:02}.py").write_text("import torch\n" + body, encoding="utf-8")
    return folder


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its exit status waits for a parent


def started_with_workers(folder: Path, *args: str) -> tuple[subprocess.Popen[str], list[int]]:
    process = subprocess.Popen(  # in a process group of its own, as a shell runs a command
        [*COMMAND, "check", "--no-cache", "-j", "2", *args],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        workers = children(process.pid)
        if len(workers) >= 2:
            time.sleep(1.0)  # the workers are busy with the first files
            return process, workers
        time.sleep(0.1)
    process.kill()
    pytest.fail("the run never started its two workers")


def wait_gone(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if alive(pid)]


linux_only = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc")


@linux_only
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """kill -9 of the main process (the OOM killer, a CI cancel) left the -j workers running."""
    process, workers = started_with_workers(slow_tree(tmp_path))
    process.kill()
    process.wait(timeout=30)
    assert wait_gone(workers, 10) == []


@linux_only
@pytest.mark.parametrize(
    ("signum", "to_group", "code", "message"),
    [
        (signal.SIGTERM, False, 143, "stopped by SIGTERM"),  # `timeout`: the main process only
        (signal.SIGTERM, True, 143, "stopped by SIGTERM"),  # a CI cancel: the whole process group
        (signal.SIGINT, True, 130, "interrupted"),  # Ctrl-C: the terminal signals the whole group
    ],
    ids=["SIGTERM", "SIGTERM-group", "SIGINT-group"],
)
def test_a_signal_stops_the_run_promptly_with_its_exit_code(
    tmp_path: Path, signum: int, to_group: bool, code: int, message: str
) -> None:
    """SIGTERM left the workers alive; Ctrl-C waited for the work the workers had begun."""
    process, workers = started_with_workers(slow_tree(tmp_path))
    sent = time.monotonic()
    if to_group:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    _, err = process.communicate(timeout=60)
    assert time.monotonic() - sent < 4, "the run did not stop promptly"
    assert process.returncode == code
    assert err.strip() == f"esper-lint: {message}"
    assert wait_gone(workers, 10) == []


@linux_only
def test_sigterm_during_fix_leaves_no_worker_and_no_temporary(tmp_path: Path) -> None:
    folder = slow_tree(tmp_path)
    process, workers = started_with_workers(folder, "--fix")
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)
    assert process.returncode == 143
    assert wait_gone(workers, 10) == []
    assert not list(folder.glob(".*esper-lint-tmp"))


def test_the_worker_watchdog_sees_its_parent_end() -> None:
    from esper_lint.frontends import pool

    assert pool._parent_alive(os.getpid(), os.getppid())
    assert not pool._parent_alive(os.getpid(), os.getppid() + 1)  # re-parented
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    assert not pool._parent_alive(dead.pid, os.getppid())


# ----------------------------------------------------------------------------- item 14: temporaries of killed runs
def test_a_temporary_left_by_a_killed_fix_is_removed_by_the_next_fix(tmp_path: Path) -> None:
    """One kill -9 in 24 left `.name.py.xxxx.esper-lint-tmp` beside a source file, for ever."""
    tree(tmp_path)
    killed = textwrap.dedent(
        """
        import os, signal
        from pathlib import Path
        from esper_lint.fix import files
        os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # killed between write and rename
        old = Path("ok.py").read_bytes()
        files.write_atomically(Path("ok.py"), old + b"# fixed\\n", old)
        """
    )
    died = subprocess.run([sys.executable, "-c", killed], cwd=tmp_path, capture_output=True, timeout=60)
    assert died.returncode == -signal.SIGKILL
    (left,) = tmp_path.glob(".ok.py.*.esper-lint-tmp")
    assert (tmp_path / "ok.py").read_text(encoding="utf-8") == BAD
    result = run(tmp_path, "check", "--no-cache", "--fix")
    assert result.returncode == EXIT_FINDINGS
    assert not left.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["ok.py"]


def test_only_stale_temporaries_of_ours_are_removed(tmp_path: Path) -> None:
    from esper_lint.fix import remove_stale_temporaries

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    names = {
        f".a.py.{gone.pid}.abcd1234.esper-lint-tmp": False,  # its run has ended
        f".a.py.{os.getpid()}.abcd1234.esper-lint-tmp": True,  # a live run's (this one)
        ".a.py.abcd1234.esper-lint-tmp": True,  # an older run's, recent: perhaps still writing
        ".b.py.efgh5678.esper-lint-tmp": False,  # an older run's, two hours old
        ".a.py.notes": True,
        "a.py.abcd1234.esper-lint-tmp": True,  # not hidden: not a name we make
    }
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    two_hours_ago = time.time() - 7200
    os.utime(tmp_path / ".b.py.efgh5678.esper-lint-tmp", (two_hours_ago, two_hours_ago))
    (tmp_path / f".c.py.{gone.pid}.abcd1234.esper-lint-tmp").mkdir()  # not a regular file: left alone
    removed = remove_stale_temporaries([tmp_path])
    assert sorted(path.name for path in removed) == sorted(name for name, kept in names.items() if not kept)
    assert all((tmp_path / name).exists() == kept for name, kept in names.items())
    assert (tmp_path / f".c.py.{gone.pid}.abcd1234.esper-lint-tmp").is_dir()


def test_a_failed_or_interrupted_write_leaves_no_temporary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from esper_lint.frontends.errors import Stopped

    target = tmp_path / "m.py"
    target.write_bytes(b"old\n")
    for error in (OSError(28, "No space left on device"), Stopped(signal.SIGTERM)):

        def fail(*args: object, error: BaseException = error) -> None:
            raise error

        monkeypatch.setattr(fix_files.os, "replace", fail)
        with pytest.raises(type(error)):
            write_atomically(target, b"new\n", b"old\n")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.py"] and target.read_bytes() == b"old\n"


# ----------------------------------------------------------------------------- item 15: links, owners, hard links
FIXABLE = b"import torch\n\nf = torch._C.BoolTensor\n"
FIXED = b"import torch\n\nf = torch.BoolTensor\n"


def project(folder: Path) -> Path:
    root = folder / "project"
    root.mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "p"\n', encoding="utf-8")
    return root


def test_fix_never_writes_through_a_link_out_of_the_project(tmp_path: Path) -> None:
    root = project(tmp_path)
    outside = tmp_path / "elsewhere" / "victim.py"
    outside.parent.mkdir()
    outside.write_bytes(FIXABLE)
    (root / "link.py").symlink_to(outside)
    (root / "inner.py").write_bytes(FIXABLE)
    (root / "inner_link.py").symlink_to(root / "inner.py")  # inside the project: followed
    result = run(root, "check", "--no-cache", "--fix", "link.py", "inner_link.py")
    assert result.returncode == EXIT_ERROR
    assert f"link.py: a symbolic link to {outside}, outside the project; not written" in result.stderr
    assert outside.read_bytes() == FIXABLE
    assert (root / "inner.py").read_bytes() == FIXED and (root / "inner_link.py").is_symlink()
    walked = run(root, "check", "--no-cache", "--fix")
    assert walked.returncode == EXIT_ERROR and "outside the project; not written" in walked.stderr
    assert outside.read_bytes() == FIXABLE


def test_fix_follows_a_link_into_a_folder_named_on_the_command_line(tmp_path: Path) -> None:
    root = project(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "real.py").write_bytes(FIXABLE)
    (root / "link.py").symlink_to(shared / "real.py")
    result = run(root, "check", "--no-cache", "--fix", ".", str(shared))
    assert result.returncode in (EXIT_CLEAN, EXIT_FINDINGS), result.stderr
    assert (shared / "real.py").read_bytes() == FIXED


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can make a file another user owns")
def test_fix_as_root_keeps_the_owner(tmp_path: Path) -> None:
    """Run as root, --fix reset every fixed file's owner to root."""
    (tmp_path / "m.py").write_bytes(FIXABLE)
    os.chown(tmp_path / "m.py", 65534, 65534)
    (tmp_path / "m.py").chmod(0o640)
    result = run(tmp_path, "check", "--no-cache", "--fix")
    assert result.returncode in (EXIT_CLEAN, EXIT_FINDINGS), result.stderr
    info = (tmp_path / "m.py").stat()
    assert (tmp_path / "m.py").read_bytes() == FIXED
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (65534, 65534, 0o640)


def test_fix_refuses_to_change_the_owner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A user who may write a file (through its group) but not give it its owner back leaves it."""
    from esper_lint.fix import NotWritten

    target = tmp_path / "m.py"
    target.write_bytes(FIXABLE)
    real_fstat = os.fstat
    owner = target.stat()

    def fstat(descriptor: int) -> os.stat_result:  # the temporary file looks another user's
        info = real_fstat(descriptor)
        if info.st_ino == owner.st_ino:
            return info
        return os.stat_result((info.st_mode, info.st_ino, info.st_dev, info.st_nlink, owner.st_uid + 1, info.st_gid, *info[6:]))

    def fchown(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(fix_files.os, "fstat", fstat)
    monkeypatch.setattr(fix_files.os, "fchown", fchown)
    with pytest.raises(NotWritten, match="an owner this user cannot give the rewritten file; not written"):
        write_atomically(target, FIXED, FIXABLE)
    assert target.read_bytes() == FIXABLE and sorted(p.name for p in tmp_path.iterdir()) == ["m.py"]


def test_fix_refuses_a_hard_linked_file(tmp_path: Path) -> None:
    """Replacing a file with several hard links split them: the other names kept the old text."""
    (tmp_path / "m.py").write_bytes(FIXABLE)
    os.link(tmp_path / "m.py", tmp_path / "other_name.txt")
    result = run(tmp_path, "check", "--no-cache", "--fix")
    assert result.returncode == EXIT_ERROR
    assert "m.py: has 2 hard links, which replacing it would split; not written" in result.stderr
    assert (tmp_path / "m.py").read_bytes() == FIXABLE
    assert (tmp_path / "m.py").stat().st_ino == (tmp_path / "other_name.txt").stat().st_ino


def test_fix_paths_defaults_to_the_project_root(tmp_path: Path) -> None:
    root = project(tmp_path)
    outside = tmp_path / "victim.py"
    outside.write_bytes(FIXABLE)
    (root / "link.py").symlink_to(outside)
    run_ = fix_paths([root / "link.py"], Config(project_root=root), mode="fix")
    assert run_.errors and "outside the project" in run_.errors[0] and outside.read_bytes() == FIXABLE


# ----------------------------------------------------------------------------- item 16: --diff is patch-exact
DIFF_CASES = {
    "utf8_bom": b"\xef\xbb\xbfimport torch\n\nf = torch._C.BoolTensor\n",
    "latin1": b"# -*- coding: latin-1 -*-\nimport torch\ns = 'caf\xe9'\nf = torch._C.BoolTensor\n",
    "crlf_no_final_newline": b"import torch\r\n\r\nf = torch._C.BoolTensor",
    "lone_cr": b"import torch\r\rf = torch._C.BoolTensor\r",
    "form_feed_and_nel": b"import torch\n\x0c\ns = '\xc2\x85'\nf = torch._C.BoolTensor\n",
}


@pytest.mark.skipif(shutil.which("patch") is None, reason="needs GNU patch")
def test_diff_applies_with_patch_to_give_exactly_the_fixed_files(tmp_path: Path) -> None:
    shown, fixed = tmp_path / "shown", tmp_path / "fixed"
    for folder in (shown, fixed):
        folder.mkdir()
        for name, data in DIFF_CASES.items():
            (folder / f"{name}.py").write_bytes(data)
    diff = subprocess.run([*COMMAND, "check", "--no-cache", "--diff"], cwd=shown, capture_output=True, timeout=120)
    assert diff.returncode == EXIT_FINDINGS, diff.stderr
    assert run(fixed, "check", "--no-cache", "--fix").returncode in (EXIT_CLEAN, EXIT_FINDINGS)
    patched = subprocess.run(["patch", "-p0", "--force"], input=diff.stdout, cwd=shown, capture_output=True, timeout=60)
    assert patched.returncode == 0, patched.stdout + patched.stderr
    for name in DIFF_CASES:
        assert (shown / f"{name}.py").read_bytes() == (fixed / f"{name}.py").read_bytes() != DIFF_CASES[name], name


# ----------------------------------------------------------------------------- item 17: only the installed torch
FAKE_TORCH = """\
import pathlib
pathlib.Path(__file__).with_name("RAN").write_text("the project's own torch ran")
__version__ = "0.0-fake"
def _only_in_the_fake():
    pass
"""


@pytest.fixture
def local_torch(tmp_path: Path) -> Callable[[], bool]:
    """A project with its own `torch/` package in the working folder; returns whether it ran."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text(FAKE_TORCH, encoding="utf-8")
    (tmp_path / "a.py").write_text("import torch\ntorch._only_in_the_fake()\ntorch._foreach_norm\n", encoding="utf-8")
    return lambda: (tmp_path / "torch" / "RAN").exists()


def test_verify_under_python_m_imports_only_the_installed_torch(tmp_path: Path, local_torch: Callable[[], bool]) -> None:
    """`python -m esper_lint verify` puts the working folder first on the import path: the gate
    ran the project's torch/ and passed against it."""
    for args in (["verify", "--no-cache"], ["verify", "--no-cache", "a.py"], ["verify", "--no-cache", str(tmp_path)]):
        result = run(tmp_path, *args)
        assert not local_torch(), "the project's own torch/ was imported"
        assert result.returncode == EXIT_FINDINGS, result.stderr
        assert "a.py:2:1: ESP203 `torch._only_in_the_fake` does not exist in the installed torch" in result.stdout
        assert "torch._foreach_norm" not in result.stdout and "0.0-fake" not in result.stderr


def test_the_pytest_helper_imports_only_the_installed_torch(tmp_path: Path, local_torch: Callable[[], bool]) -> None:
    (tmp_path / "test_gate.py").write_text(
        "from esper_lint.testing import missing_private_apis\n\n"
        "def test_gate():\n"
        "    assert [f.name for f in missing_private_apis('a.py')] == ['torch._only_in_the_fake']\n",
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_gate.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert not local_torch()


def test_a_local_torch_imported_before_is_refused(tmp_path: Path, local_torch: Callable[[], bool]) -> None:
    script = "import sys, torch\nfrom esper_lint.frontends.cli import main\nsys.exit(main(['verify', '--no-cache']))\n"
    result = no_traceback(subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120))
    assert local_torch()  # the project's own test imported it, not esper-lint
    assert result.returncode == EXIT_ERROR
    assert f"the torch at {tmp_path / 'torch'} is the linted project's own `torch/`" in result.stderr
