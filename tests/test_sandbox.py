"""The python(code) sandbox: real escapes are blocked and reported in one line, the next run
works, nothing is left running; and code on the images gets its crops and numbers back."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from roadthink.agent.sandbox import SandboxLimits, SandboxResult, run_python

README = Path(__file__).resolve().parents[1] / "README.md"
FAST = SandboxLimits(wall_seconds=5)


@pytest.fixture(autouse=True)
def own_tempdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's sandboxes live under its tmp_path, whose name then marks their processes:
    none may be left once the test ends."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    yield tmp_path
    assert _processes_mentioning(str(tmp_path)) == []


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture(scope="module")
def scene_images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 640×360 gradient front camera and a 200×200 BEV, with known pixels."""
    folder = tmp_path_factory.mktemp("images")
    ys, xs = np.mgrid[0:360, 0:640]
    front = np.stack([xs * 255 // 639, ys * 255 // 359, np.full_like(xs, 80)], axis=-1).astype(np.uint8)
    Image.fromarray(front).save(folder / "front.png")
    Image.new("RGB", (200, 200), (40, 120, 200)).save(folder / "bev.jpg")
    return {"CAM_FRONT": folder / "front.png", "BEV": folder / "bev.jpg"}


def assert_blocked(result: SandboxResult, error: str) -> None:
    """Blocked, said in one line; and the sandbox still works afterwards."""
    assert not result.ok
    assert result.error == error
    assert "\n" not in error
    after = run_python("print(6 * 7)", limits=FAST)
    assert after.ok and after.stdout == "42\n"


# Escapes


def test_reading_outside_the_folder_is_blocked() -> None:
    assert_blocked(
        run_python("print(open('/etc/passwd').read())", limits=FAST),
        "blocked: reading /etc/passwd (outside the sandbox folder)",
    )
    assert_blocked(
        run_python(f"print(open({str(README)!r}).read())", limits=FAST),
        f"blocked: reading {README} (outside the sandbox folder)",
    )
    relative = "../" * 40 + str(README).lstrip("/")
    assert_blocked(
        run_python(f"print(open({relative!r}).read())", limits=FAST),
        f"blocked: reading {README} (outside the sandbox folder)",
    )
    assert_blocked(
        run_python("import os; print(os.listdir('/'))", limits=FAST), "blocked: reading / (outside the sandbox folder)"
    )


def test_a_caught_refusal_still_stops_the_run() -> None:
    code = "try:\n    open('/etc/passwd')\nexcept Exception:\n    print('caught')\nprint('went on')"
    result = run_python(code, limits=FAST)
    assert_blocked(result, "blocked: reading /etc/passwd (outside the sandbox folder)")
    assert result.stdout == ""


def test_writing_outside_the_folder_or_over_an_input_is_blocked(tmp_path: Path, scene_images: dict[str, Path]) -> None:
    target = tmp_path / "escaped.txt"
    assert_blocked(
        run_python(f"open({str(target)!r}, 'w').write('x')", limits=FAST),
        f"blocked: writing {target} (outside the sandbox folder)",
    )
    assert not target.exists()
    assert_blocked(
        run_python("open('CAM_FRONT.png', 'wb').write(b'x')", scene_images, limits=FAST),
        "blocked: writing CAM_FRONT.png (the input images are read-only)",
    )
    assert_blocked(run_python("import os; os.symlink('/etc/passwd', 'p.png')", limits=FAST), "blocked: making links")


def test_opening_a_socket_is_blocked_even_to_a_listening_server() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port})).sendall(b'hi')\nprint('sent')"
        result = run_python(code, limits=FAST)
        assert_blocked(result, "blocked: opening a network socket")
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()


@pytest.mark.parametrize(
    "code",
    [
        "import os\nwhile True:\n    os.fork()",
        "import subprocess\nsubprocess.run(['ls'])",
        "import os\nos.system('ls')",
        "import os\nos.execv('/bin/ls', ['ls'])",
        "import multiprocessing as mp\nmp.get_context('spawn').Process(target=print).start()",
        "import _posixsubprocess\n_posixsubprocess.fork_exec()",
    ],
    ids=["fork-bomb", "subprocess", "os.system", "exec", "spawn", "fork_exec"],
)
def test_starting_processes_is_blocked(code: str) -> None:
    assert_blocked(run_python(code, limits=FAST), "blocked: starting processes")


def test_native_code_signals_and_limits_are_blocked() -> None:
    assert_blocked(
        run_python("import ctypes\nctypes.CDLL('libc.so.6').getpid()", limits=FAST),
        "blocked: calling native code through ctypes",
    )
    assert_blocked(run_python("import os\nos.kill(os.getppid(), 9)", limits=FAST), "blocked: sending signals")
    assert_blocked(
        run_python("import resource\nresource.setrlimit(resource.RLIMIT_AS, (-1, -1))", limits=FAST),
        "blocked: changing resource limits",
    )


def test_an_endless_loop_times_out_and_the_caller_does_not_wait() -> None:
    result = run_python("print('started')\nwhile True:\n    pass", limits=SandboxLimits(wall_seconds=1.5))
    assert_blocked(result, "timed out after 1.5 s")
    assert result.stdout == "started\n"  # unbuffered: what was printed before the kill is kept
    assert result.seconds < 3


def test_cpu_seconds_are_limited() -> None:
    result = run_python("while True:\n    pass", limits=SandboxLimits(cpu_seconds=1, wall_seconds=8))
    assert_blocked(result, "CPU time limit (1 s) exceeded")


@pytest.mark.parametrize(
    "code",
    ["x = bytearray(10**10)", "x = []\nwhile True:\n    x.append(bytearray(10**7))"],
    ids=["one-block", "growing-list"],
)
def test_a_memory_hog_is_stopped(code: str) -> None:
    result = run_python(code, limits=FAST)
    assert_blocked(result, "memory limit (1 GiB) exceeded")
    assert result.stderr.endswith("MemoryError")


def test_huge_output_is_cut_and_a_flood_is_stopped() -> None:
    result = run_python("print('x' * 1_000_000)\nprint('done')", limits=FAST)
    assert result.ok
    assert result.stdout.startswith("x" * 10_000 + "\n[output cut after 10000 characters; 1000006 bytes")
    assert len(result.stdout) < 10_100
    flood = run_python("while True:\n    print('y' * 10_000)", limits=FAST)
    assert_blocked(flood, "stopped: printed more than 10 MB")
    assert flood.seconds < 4


def test_the_environment_holds_no_secrets_and_no_open_files(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret")
    code = (
        "import os\nprint(sorted(os.environ))\n"
        "def is_open(fd):\n    try:\n        return bool(os.fstat(fd))\n    except OSError:\n        return False\n"
        "print([fd for fd in range(256) if is_open(fd)])"
    )
    with open(README):  # a file the caller holds open must not reach the child
        result = run_python(code, limits=FAST)
    assert result.ok, result.error
    names, descriptors = result.stdout.splitlines()
    assert "OPENAI_API_KEY" not in names and "sk-secret" not in result.stdout
    assert descriptors == "[0, 1, 2]"
    assert_blocked(
        run_python("open('/proc/self/environ').read()", limits=FAST),
        "blocked: reading /proc/self/environ (outside the sandbox folder)",
    )


def test_the_repository_sources_are_not_importable() -> None:
    result = run_python("import roadthink", limits=FAST)
    assert result.error == "ModuleNotFoundError: No module named 'roadthink' (line 1)"


def _can_unshare_network() -> bool:
    if shutil.which("unshare") is None:
        return False
    command = ["unshare", "--net", "true"] if os.getuid() == 0 else ["unshare", "--user", "--net", "true"]
    return subprocess.run(command, capture_output=True).returncode == 0


@pytest.mark.skipif(not _can_unshare_network(), reason="the kernel allows no new network namespace here")
def test_the_code_runs_in_its_own_network_namespace() -> None:
    result = run_python("import os\nprint(os.readlink('/proc/self/ns/net'))", limits=FAST)
    assert result.ok, result.error
    assert result.stdout.strip() != os.readlink("/proc/self/ns/net")


# Mistakes in the code


def test_an_exception_gives_its_last_line_and_line_number() -> None:
    result = run_python("x = 1\ny = x / 0\n", limits=FAST)
    assert result.error == "ZeroDivisionError: division by zero (line 2)"
    assert result.stderr.endswith("ZeroDivisionError: division by zero")
    assert 'File "<code>", line 2' in result.stderr and "sandbox.py" not in result.stderr


def test_a_syntax_error_gives_its_line() -> None:
    result = run_python("a = 1\nb = 2\nc = (\n", limits=FAST)
    assert result.error == "SyntaxError: '(' was never closed (line 3)"


def test_exit_status() -> None:
    assert run_python("import sys\nsys.exit(0)", limits=FAST).ok
    assert run_python("import sys\nsys.exit(3)", limits=FAST).error == "exited with status 3"


# Work on the images


def test_crop_and_zoom_with_pil_comes_back_at_the_right_size(scene_images: dict[str, Path], tmp_path: Path) -> None:
    code = (
        "crop = images['CAM_FRONT'].crop((100, 50, 260, 140))\n"
        "crop.resize((320, 180), Image.NEAREST).save('zoom.png')\n"
        "print(crop.size, images['BEV'].size)"
    )
    out = tmp_path / "out"
    first = run_python(code, scene_images, limits=FAST, out_dir=out)
    assert first.ok, first.stderr
    assert first.stdout == "(160, 90) (200, 200)\n"
    assert [p.name for p in first.images] == ["zoom.png"]
    zoom = np.asarray(Image.open(first.images[0]))
    assert zoom.shape == (180, 320, 3)
    original = np.asarray(Image.open(scene_images["CAM_FRONT"]))
    assert np.array_equal(zoom[::2, ::2], original[50:140, 100:260])
    second = run_python(code, scene_images, limits=FAST, out_dir=out)
    assert [p.name for p in second.images] == ["zoom-1.png"]  # an earlier run's image is kept


def test_numpy_crop_shown_and_cv2_edges_saved(scene_images: dict[str, Path]) -> None:
    code = (
        "a = np.asarray(images['CAM_FRONT'])\n"
        "print(show(a[50:140, 100:260]))\n"
        "bgr = cv2.imread(image_files['CAM_FRONT'])\n"
        "cv2.imwrite('edges.jpg', cv2.Canny(bgr, 50, 150))\n"
        "draw = ImageDraw.Draw(images['BEV'])\n"
        "draw.rectangle((10, 10, 60, 60), outline='red')\n"
        "show(images['BEV'])"
    )
    result = run_python(code, scene_images, limits=FAST)
    assert result.ok, result.stderr
    assert result.stdout == "show_1.png\n"
    sizes = {p.name: Image.open(p).size for p in result.images}
    assert sizes == {"show_1.png": (160, 90), "edges.jpg": (640, 360), "show_2.png": (200, 200)}
    shown = np.asarray(Image.open(result.images[0].with_name("show_1.png")))
    assert np.array_equal(shown, np.asarray(Image.open(scene_images["CAM_FRONT"]))[50:140, 100:260])


def test_pixel_statistics_are_printed(scene_images: dict[str, Path]) -> None:
    code = "a = np.asarray(images['CAM_FRONT'], dtype=float)\nprint([round(v, 3) for v in a.mean((0, 1)).tolist()])"
    result = run_python(code, scene_images, limits=FAST)
    assert result.ok, result.stderr
    expected = np.asarray(Image.open(scene_images["CAM_FRONT"]), dtype=float).mean(axis=(0, 1))
    assert result.stdout == f"{[round(v, 3) for v in expected.tolist()]}\n"


def test_images_beyond_the_limit_are_not_returned_and_fakes_are_skipped() -> None:
    code = (
        "from PIL import Image\nfor n in range(3):\n    Image.new('L', (4, 4)).save(f'{n}.png')\n"
        "open('fake.png', 'w').write('x')"
    )
    result = run_python(code, limits=SandboxLimits(wall_seconds=5, max_images=2))
    assert result.ok, result.stderr
    assert [p.name for p in result.images] == ["0.png", "1.png"]
    assert result.stdout.endswith("[1 more images not returned (at most 2 per run)]")


def test_bad_image_names_are_refused(scene_images: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match="image name"):
        run_python("pass", {"../x": scene_images["BEV"]})
