"""A ``python(code)`` tool for the agent: model-written code runs on the question's images,
in a throwaway process that can read its images, write only its own folder and reach no network.

What the code sees: its working folder holds a read-only copy of every image (``CAM_FRONT.png``;
``image_files`` maps each name to its file), and these names are bound when the code uses
them: ``images`` (name → RGB ``PIL.Image.Image``), ``np`` (numpy), ``Image`` and ``ImageDraw``
(PIL), ``cv2`` (OpenCV, whose arrays are BGR) and ``show(img)``, which saves a PIL image or a
uint8 array (H×W grey, H×W×3 RGB) as ``show_N.png``. Every PNG or JPEG the code leaves in its
folder comes back as a file for the model to look at, with stdout, the end of stderr and one
line saying what went wrong ("timed out after 10 s", "blocked: opening a network socket", …).
Unused libraries are not imported, so a bare ``print(1)`` does not pay for numpy and OpenCV.

The layers, each for what the others cannot do:

* A fresh interpreter (``python -I -S -B``), not a fork of the caller: no inherited open
  files, a minimal environment (no ``OPENAI_API_KEY`` or other secrets), ``sys.path`` limited
  to the standard library and site-packages (the repository's own sources are not on it),
  its own session so the whole process group can be killed. Memory, CPU and crashes of the
  code are its own; the caller only ever sees a ``SandboxResult``.
* The caller's wall-clock timer kills the process group (an endless loop, a sleeping
  child), and the caller reads output as it comes, keeping the head of stdout and the tail
  of stderr, and stops a run that floods it: nothing the code does can hang or bloat it.
* ``resource`` limits, set by the kernel and beyond the code's reach: address space
  (``MemoryError`` instead of swapping the machine), CPU seconds (busy threads), file size,
  open files, no core dumps, and processes (fork bombs; the kernel exempts root from this
  one, so for root the audit hook is what stops them).
* A new network namespace where the kernel allows one (root, or unprivileged user
  namespaces): a socket opened past the hook finds only a loopback that is down.
* An audit hook (PEP 578), installed after the libraries the code needs are loaded and
  before the code runs. It stops the process, reporting one line, at the first ``open`` or
  listing outside the folder (reads inside the Python installation stay allowed: imports
  need them; writes go only to the folder, never to the input copies), any socket,
  subprocess, ``os.system``, ``fork``, ``exec``, ``spawn``, signal, link, change of
  folder or of resource limits, ``ctypes`` call into native code, and
  ``gc`` walks that could find the hook. It ends the process rather than raising, so a
  broad ``except`` in the code cannot swallow the refusal. ``_posixsubprocess.fork_exec``,
  which raises no audit event (``multiprocessing``'s spawn uses it), is replaced by a
  function that raises one.

Honest limits: an audit hook lives inside the interpreter it guards, and PEP 578 says it is
no sandbox against code that sets out to defeat it (a path object whose ``__fspath__``
answers differently on the second call, monkeypatching the modules the libraries use,
native code already loaded before the hook). Paths are checked as written, without
following symlinks (the code cannot make any in its folder, so this only errs towards
refusing); ``os.stat`` and friends raise no event, so the code can learn whether a path
exists; C libraries that open files themselves (FreeType fonts) are not seen; the number of
files in the folder is not capped, only their size. The kernel limits and the throwaway
folder beneath the hook are what bound the damage; a seccomp filter or a separate user
would be the next layers.
"""

from __future__ import annotations

import ast
import contextlib
import itertools
import json
import linecache
import os
import re
import resource
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
import traceback
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NoReturn


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use; the defaults let numpy, PIL and OpenCV load and crop a few images."""

    wall_seconds: float = 10.0
    cpu_seconds: int = 10
    memory_bytes: int = 1 << 30  # address space, not resident memory: libraries map far more than they touch
    file_bytes: int = 64 << 20  # per file written; a bigger write fails with EFBIG
    max_output_chars: int = 10_000  # of stdout kept (its head) and of stderr (its tail)
    max_images: int = 8  # returned per run
    max_processes: int = 16  # threads included, beyond those the user already runs (root is exempt)
    max_open_files: int = 64


DEFAULT_LIMITS = SandboxLimits()


@dataclass(frozen=True)
class SandboxResult:
    """What the model gets back: ``error`` is one line, None when the code ran to its end."""

    ok: bool
    stdout: str
    stderr: str
    images: list[Path] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_CONFIG = ".sandbox.json"  # written by the caller, read and deleted by the child before the code runs
_FILENAME = "<code>"  # the code's name in tracebacks
_MARK = "\x1e"  # starts the child's one-line report, the last line of its stderr
_FLOOD_FACTOR = 1000  # a run printing this many times what is kept is stopped, not drained to its deadline
_CLONE_NEWUSER, _CLONE_NEWNET = 0x10000000, 0x40000000


def run_python(
    code: str,
    images: Mapping[str, Path] | None = None,
    limits: SandboxLimits = DEFAULT_LIMITS,
    out_dir: Path | None = None,
) -> SandboxResult:
    """Run ``code`` in the sandbox on ``images`` (name → file) and return within the wall limit
    plus a moment, leaving no process behind. Images it saved, even in a run that failed, are
    copied to ``out_dir`` (made if missing; by default a new temporary folder the caller owns).
    Raises ValueError for an image name that is not a plain word, OSError for an unreadable image."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="roadthink-sandbox-")).resolve()
    try:
        inputs = _copy_inputs(images or {}, work)
        config = {"code": code, "inputs": inputs, "limits": asdict(limits), "roots": _read_roots(), "path": _lib_dirs()}
        (work / _CONFIG).write_text(json.dumps(config))
        command = [sys.executable, "-I", "-S", "-B", "-u", "-X", "utf8", __file__, str(work)]
        with subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=work,
            env=_child_env(work),
            start_new_session=True,
        ) as process:
            run = _supervise(process, limits)
        saved, notes = _collect_images(work, set(inputs.values()), limits.max_images, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _result(run, limits, saved, notes, time.monotonic() - started)


def _copy_inputs(images: Mapping[str, Path], work: Path) -> dict[str, str]:
    """Copy each image into the folder as NAME.suffix, read-only; returns name → file name."""
    inputs = {}
    for name, source in images.items():
        if not _NAME.fullmatch(name):
            raise ValueError(f"image name {name!r}: use letters, digits, '_' and '-'")
        target = work / f"{name}{Path(source).suffix.lower() or '.png'}"
        shutil.copyfile(source, target)
        target.chmod(0o444)
        inputs[name] = target.name
    return inputs


def _read_roots() -> list[str]:
    """The Python installation (standard library, site-packages): readable so imports work."""
    prefixes = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    return sorted({os.path.realpath(p) for p in prefixes})


def _lib_dirs() -> list[str]:
    """site-packages without ``site``: its .pth files would add the repository's sources to the path."""
    paths = sysconfig.get_paths()
    return list(dict.fromkeys((paths["purelib"], paths["platlib"])))


def _child_env(work: Path) -> dict[str, str]:
    """A minimal environment: nothing of the caller's (API keys), one thread per library
    (threads count against the process and memory limits), the folder as home and temp."""
    one = "1"
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "TMPDIR": str(work),
        "LC_ALL": "C.UTF-8",
        "OMP_NUM_THREADS": one,
        "OPENBLAS_NUM_THREADS": one,
        "MKL_NUM_THREADS": one,
        "OPENCV_FOR_THREADS_NUM": one,
    }


@dataclass
class _Capture:
    """One output stream, kept bounded: its head (stdout) or its tail (stderr)."""

    keep: int
    tail: bool
    data: bytearray = field(default_factory=bytearray)
    total: int = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        excess = len(self.data) - self.keep
        if excess > 0 and self.tail:
            del self.data[:excess]
        elif excess > 0:
            del self.data[self.keep :]


@dataclass
class _Run:
    stdout: _Capture
    stderr: _Capture
    returncode: int
    timed_out: bool
    flooded: bool


def _supervise(process: subprocess.Popen[bytes], limits: SandboxLimits) -> _Run:
    """Read the child's output until it ends or its time is up, then kill its process group.

    The group is killed before the child is reaped, so its id cannot have been reused."""
    assert process.stdout is not None and process.stderr is not None
    deadline = time.monotonic() + limits.wall_seconds
    keep = 4 * limits.max_output_chars  # bytes: a UTF-8 character takes up to four
    out, err = _Capture(keep, tail=False), _Capture(keep, tail=True)
    timed_out = flooded = False
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, out)
        selector.register(process.stderr, selectors.EVENT_READ, err)
        while True:
            exited = _has_exited(process.pid)
            if exited and not selector.get_map():
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if exited:  # something it left behind holds the pipes open
                _kill_group(process.pid)
            if not selector.get_map():
                time.sleep(min(remaining, 0.005))
                continue
            for key, _ in selector.select(min(remaining, 0.05)):
                chunk = os.read(key.fd, 1 << 16)
                if chunk:
                    key.data.add(chunk)
                else:
                    selector.unregister(key.fileobj)
            if out.total + err.total > _FLOOD_FACTOR * limits.max_output_chars:
                flooded = True
                break
    _kill_group(process.pid)
    returncode = process.wait()
    for stream, capture in ((process.stdout, out), (process.stderr, err)):
        _drain(stream.fileno(), capture)
    return _Run(out, err, returncode, timed_out, flooded)


def _has_exited(pid: int) -> bool:
    """Whether the child has ended, without reaping it (WNOWAIT)."""
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _drain(fd: int, capture: _Capture) -> None:
    """What was still in a pipe when the child was killed, without blocking on a writer that escaped."""
    os.set_blocking(fd, False)
    with contextlib.suppress(OSError):  # BlockingIOError: nothing more for now
        while chunk := os.read(fd, 1 << 16):
            capture.add(chunk)


def _collect_images(work: Path, inputs: set[str], limit: int, out_dir: Path | None) -> tuple[list[Path], list[str]]:
    """Copy the PNGs and JPEGs the code left (oldest first, regular files only) to ``out_dir``."""
    found = []
    for path in work.iterdir():
        try:
            info = path.lstat()
            if path.name in inputs or path.suffix.lower() not in IMAGE_SUFFIXES or not stat.S_ISREG(info.st_mode):
                continue
            with path.open("rb") as file:
                if file.read(8).startswith(_IMAGE_MAGIC):
                    found.append((info.st_mtime_ns, path.name, path))
        except OSError:  # made unreadable by the code
            continue
    found.sort()
    notes = [f"{len(found) - limit} more images not returned (at most {limit} per run)"] if len(found) > limit else []
    if not found:
        return [], notes
    target = Path(tempfile.mkdtemp(prefix="roadthink-sandbox-images-")) if out_dir is None else out_dir
    target.mkdir(parents=True, exist_ok=True)
    saved = []
    for _, _, path in found[:limit]:
        destination = _free_name(target, path.name)
        shutil.copyfile(path, destination)
        saved.append(destination)
    return saved, notes


def _free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, numbered when an earlier run already left one."""
    path, n = folder / name, 0
    while path.exists():
        n += 1
        path = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    return path


def _result(run: _Run, limits: SandboxLimits, images: list[Path], notes: list[str], seconds: float) -> SandboxResult:
    stdout = _head(run.stdout, limits.max_output_chars)
    stderr = bytes(run.stderr.data).decode("utf-8", "replace")
    report = None
    if run.returncode != 0 and _MARK in stderr:
        stderr, _, report = stderr.rpartition(_MARK)
        report = report.strip()
    stderr = stderr.rstrip()[-limits.max_output_chars :]
    if notes:
        stdout += "".join(f"\n[{note}]" for note in notes)
    error = _error(run, limits, report)
    return SandboxResult(ok=error is None, stdout=stdout, stderr=stderr, images=images, error=error, seconds=seconds)


def _head(capture: _Capture, limit: int) -> str:
    text = bytes(capture.data).decode("utf-8", "replace")
    if capture.total <= len(capture.data) and len(text) <= limit:
        return text
    return f"{text[:limit]}\n[output cut after {limit} characters; {capture.total} bytes printed in all]"


def _error(run: _Run, limits: SandboxLimits, report: str | None) -> str | None:
    """The one line that says how the run ended; None when it ran to its end."""
    if run.timed_out:
        return f"timed out after {limits.wall_seconds:g} s"
    if run.flooded:
        return f"stopped: printed more than {_FLOOD_FACTOR * limits.max_output_chars / 1e6:g} MB"
    if report:
        return report
    if run.returncode == -signal.SIGXCPU:
        return f"CPU time limit ({limits.cpu_seconds} s) exceeded"
    if run.returncode < 0:
        return f"killed by {signal.Signals(-run.returncode).name}"
    if run.returncode > 0:
        return f"exited with status {run.returncode}"
    return None


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


# The child: everything below runs in the sandboxed process.


def _child_main(work: str) -> NoReturn:
    """Limits, isolation, the libraries the code names, the guard; then the code itself."""
    config_path = os.path.join(work, _CONFIG)
    with open(config_path) as file:
        config = json.load(file)
    os.remove(config_path)
    limits = SandboxLimits(**config["limits"])
    _set_limits(limits)
    _unshare_network()
    _disarm_fork_exec()
    sys.path.extend(config["path"])
    source: str = config["code"]
    try:
        tree = ast.parse(source, _FILENAME)
    except SyntaxError as error:
        _report(f"SyntaxError: {error.msg} (line {error.lineno})")
    try:
        namespace = _namespace(tree, config["inputs"])
    except MemoryError:
        _report(f"memory limit ({_size(limits.memory_bytes)}) exceeded while loading numpy, PIL or OpenCV")
    except Exception as error:
        _report(f"loading the images or libraries: {_describe(error)}", error)
    _install_guard(work, tuple(config["roots"]), frozenset(config["inputs"].values()))
    linecache.cache[_FILENAME] = (len(source), None, source.splitlines(True), _FILENAME)
    try:
        exec(compile(tree, _FILENAME, "exec"), namespace)
    except SystemExit as exit_:
        if exit_.code not in (None, 0):
            _report(f"exited with status {exit_.code}")
    except MemoryError as error:
        namespace.clear()  # room to format the traceback
        traceback.clear_frames(error.__traceback__)
        _report(f"memory limit ({_size(limits.memory_bytes)}) exceeded", error)
    except BaseException as error:
        _report(_describe(error), error)
    os._exit(0)


def _set_limits(limits: SandboxLimits) -> None:
    wanted = {
        resource.RLIMIT_AS: limits.memory_bytes,
        resource.RLIMIT_FSIZE: limits.file_bytes,
        resource.RLIMIT_NOFILE: limits.max_open_files,
        resource.RLIMIT_CORE: 0,
    }
    if os.getuid() != 0:  # root is exempt, and counting is not free
        wanted[resource.RLIMIT_NPROC] = _tasks_of(os.getuid()) + limits.max_processes
    for kind, value in wanted.items():
        _lower(kind, value, value)
    _lower(resource.RLIMIT_CPU, limits.cpu_seconds, limits.cpu_seconds + 1)  # SIGXCPU, then SIGKILL


def _lower(kind: int, soft: int, hard: int) -> None:
    """Set a limit, never above the hard limit the process already has."""
    _, current = resource.getrlimit(kind)
    if current != resource.RLIM_INFINITY:
        soft, hard = min(soft, current), min(hard, current)
    resource.setrlimit(kind, (soft, hard))


def _tasks_of(uid: int) -> int:
    """Processes and threads the user already runs: RLIMIT_NPROC counts them all."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue
    return count


def _unshare_network() -> None:
    """Move into a new network namespace (only a loopback, down) where the kernel lets us;
    where it does not, the guard alone keeps sockets shut.

    Imports ctypes, which numpy needs, while loading native code is still allowed."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if os.getuid() == 0:
        libc.unshare(_CLONE_NEWNET)
        return
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) != 0:
        return
    # Map our own ids, or the kernel refuses to create files as an unmapped user.
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as file:
            file.write(text)


def _disarm_fork_exec() -> None:
    """``_posixsubprocess.fork_exec`` raises no audit event; make it raise one the guard refuses."""
    import _posixsubprocess

    audit = sys.audit

    def fork_exec(*args: object) -> NoReturn:
        audit("_posixsubprocess.fork_exec")
        raise PermissionError("starting processes is not allowed")

    _posixsubprocess.fork_exec = fork_exec
    subprocess._fork_exec = fork_exec  # type: ignore[attr-defined]


def _namespace(tree: ast.Module, inputs: dict[str, str]) -> dict[str, object]:
    """The code's globals: the libraries and images it names, loaded before the guard is up."""
    names = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    namespace: dict[str, object] = {"__name__": "__main__", "image_files": dict(inputs), "show": _show}
    if "np" in names:
        import numpy

        namespace["np"] = numpy
    if names & {"Image", "ImageDraw", "images"}:
        from PIL import Image, ImageDraw

        namespace |= {"Image": Image, "ImageDraw": ImageDraw}
        if "images" in names:
            namespace["images"] = {name: _load(file) for name, file in inputs.items()}
    if "cv2" in names:
        import cv2

        namespace["cv2"] = cv2
    return namespace


def _load(file: str) -> object:
    from PIL import Image

    with Image.open(file) as image:
        return image.convert("RGB")


_shown = itertools.count(1)


def _show(image: object) -> str:
    """Save a PIL image or a uint8 array (H×W grey, H×W×3 RGB) so that the model sees it; returns its file name."""
    from PIL import Image

    picture = image if isinstance(image, Image.Image) else Image.fromarray(image)  # type: ignore[arg-type]
    name = f"show_{next(_shown)}.png"
    picture.save(name)
    return name


def _install_guard(work: str, roots: tuple[str, ...], inputs: frozenset[str]) -> None:
    """Install the audit hook. It uses only names bound here (builtins and os functions
    included), so code that rebinds a module's or the builtins' attributes does not change it."""
    write, exit_, lstat, fspath, is_file, is_dir = os.write, os._exit, os.lstat, os.fspath, stat.S_ISREG, stat.S_ISDIR
    is_a, size, some, texts, descriptors = isinstance, len, any, (str, bytes), (int, type(None))
    mark, write_flags, read_events, write_events = _MARK, _WRITE_FLAGS, _READ_EVENTS, _WRITE_EVENTS
    blocked = dict.fromkeys(_PROCESS_EVENTS, "starting processes") | _BLOCKED_EVENTS
    prefix = work + "/"

    def deny(what: str) -> None:
        write(2, f"\n{mark}blocked: {what}\n".encode("utf-8", "replace"))
        exit_(1)

    def absolute(path: object) -> str | None:
        """The path made absolute and normalised as written; None for a descriptor (its open was checked)."""
        if is_a(path, descriptors):
            return None
        if not is_a(path, texts):
            path = fspath(path)
        if is_a(path, bytes):
            path = path.decode("utf-8", "surrogateescape")
        parts: list[str] = []
        for part in (path if path.startswith("/") else prefix + path).split("/"):
            if part == "..":
                if parts:
                    parts.pop()
            elif part not in ("", "."):
                parts.append(part)
        return "/" + "/".join(parts)

    def readable(path: str) -> bool:
        return some(path == root or path.startswith(root + "/") for root in roots)

    def check(path: object, writing: bool, opening: bool = False) -> None:
        full = absolute(path)
        if full is None:
            return
        try:
            mode: int | None = lstat(full).st_mode
        except OSError:
            mode = None
        if full == work or full.startswith(prefix):
            name = full[size(prefix) :]
            if writing and name in inputs:
                deny(f"writing {name} (the input images are read-only)")
            if mode is not None and not (is_file(mode) or is_dir(mode)):
                deny(f"opening {name} (not a regular file)")
        elif writing:
            deny(f"writing {full} (outside the sandbox folder)")
        elif not readable(full):
            deny(f"reading {full} (outside the sandbox folder)")
        elif opening and mode is not None and is_dir(mode):  # a folder's descriptor would anchor relative paths
            deny(f"opening the folder {full} (outside the sandbox folder)")

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (is_a(flags, int) and flags & write_flags != 0) or (
                is_a(mode, str) and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            )
            check(path, writing, opening=True)
        elif event in read_events:
            check(args[0] if args else None, writing=False)
        elif event in write_events:
            for index in write_events[event]:
                check(args[index], writing=True)
        elif event in blocked:
            deny(blocked[event])
        elif event.startswith("socket."):
            deny("opening a network socket")

    sys.addaudithook(hook)


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
_READ_EVENTS = frozenset({"os.listdir", "os.scandir"})
_WRITE_EVENTS = {  # event → positions of its path arguments
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.rename": (0, 1),
    "os.replace": (0, 1),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "sqlite3.connect": (0,),
}
_PROCESS_EVENTS = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.spawn",
    "os.posix_spawn",
    "os.fork",
    "os.forkpty",
    "_posixsubprocess.fork_exec",
)
_BLOCKED_EVENTS = {
    "os.kill": "sending signals",
    "os.killpg": "sending signals",
    "signal.pthread_kill": "sending signals",
    "os.link": "making links",
    "os.symlink": "making links",
    "os.chdir": "changing the working folder",
    "resource.setrlimit": "changing resource limits",
    "resource.prlimit": "changing resource limits",
    "ctypes.dlopen": "calling native code through ctypes",
    "ctypes.dlsym": "calling native code through ctypes",
    "ctypes.dlsym/handle": "calling native code through ctypes",
    "ctypes.call_function": "calling native code through ctypes",
    "ctypes.cdata": "calling native code through ctypes",
    "ctypes.string_at": "calling native code through ctypes",
    "ctypes.wstring_at": "calling native code through ctypes",
    "gc.get_objects": "inspecting the interpreter's objects",
    "gc.get_referrers": "inspecting the interpreter's objects",
    "gc.get_referents": "inspecting the interpreter's objects",
}


def _describe(error: BaseException) -> str:
    """``Type: message (line N)``, N being the code's last line on the stack."""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    message = str(error).strip().splitlines()
    text = f"{type(error).__name__}: {message[0][:200]}" if message else type(error).__name__
    return f"{text} (line {line})" if line else text


def _report(message: str, error: BaseException | None = None) -> NoReturn:
    """End the child: the traceback (without this file's frame), then the one-line report."""
    if error is not None and error.__traceback__ is not None:
        lines = traceback.format_exception(type(error), error, error.__traceback__.tb_next)
        os.write(2, "".join(lines).encode("utf-8", "replace"))
    os.write(2, f"\n{_MARK}{message}\n".encode("utf-8", "replace"))
    os._exit(1)


if __name__ == "__main__":
    _child_main(sys.argv[1])
