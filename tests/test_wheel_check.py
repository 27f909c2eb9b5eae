"""tools/wheel_check.py -- the checks the release workflow runs on the
hosted Windows runner -- run here on Linux: the PE import-table reader on the
real DLL and on a doctored one, the PATH cleaning, and the --no-index
install into a clean venv (with the Linux wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "wheel_check.py"
sys.path.insert(0, str(ROOT / "tools"))
import wheel_check  # noqa: E402

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses the Linux cross-builds")


@pytest.fixture(scope="module")
def windows_dll() -> Path:
    sys.path.insert(0, str(ROOT))
    import build_dll

    try:
        return build_dll.release_build("windows-amd64", build_dll.NATIVE_DIR / "windows-amd64")
    except (SystemExit, subprocess.CalledProcessError) as e:
        pytest.fail(f"cannot build the Windows DLL: {e}", pytrace=False)


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


def test_imports_accepts_the_release_dll(windows_dll: Path) -> None:
    proc = run("imports", str(windows_dll))
    assert proc.returncode == 0, proc.stderr
    assert "imports only system DLLs: KERNEL32.dll, msvcrt.dll" in proc.stdout


def test_imports_rejects_a_dll_importing_a_mingw_runtime(windows_dll: Path, tmp_path: Path) -> None:
    # the same DLL with its msvcrt.dll import renamed (same length) to a
    # MinGW runtime DLL, as the posix-thread build used to import
    data = windows_dll.read_bytes()
    assert data.count(b"msvcrt.dll\0") >= 1
    bad = tmp_path / "bad.dll"
    bad.write_bytes(data.replace(b"msvcrt.dll\0", b"libgcc.dll\0", 1))
    proc = run("imports", str(windows_dll), str(bad))
    assert proc.returncode == 1
    assert "imports non-system DLLs ['libgcc.dll']" in proc.stderr, proc.stderr


def test_imports_rejects_a_file_that_is_no_dll(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dll"
    junk.write_bytes(b"\x7fELF" + bytes(200))
    proc = run("imports", str(junk))
    assert proc.returncode == 1 and "not a PE file" in proc.stderr


def test_clean_path_drops_compilers_mingw_and_go(tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "gcc").write_text("")
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "python3").write_text("")
    path = os.pathsep.join([str(tools), str(plain), "/c/msys64/mingw64/bin", "/opt/hostedtoolcache/go/1.26/x64/bin"])
    assert wheel_check.clean_path(path) == str(plain)


def test_install_from_wheel_dir_only_into_a_clean_venv(tmp_path: Path) -> None:
    """The install step of the workflow's Windows job, with the Linux
    wheel: pip --no-index from one directory, PATH without Go or gcc, the
    package loads its library from the venv."""
    sys.path.insert(0, str(ROOT))
    import build_dll

    wheels = tmp_path / "wheels"
    try:
        lib = build_dll.release_build("linux-amd64", build_dll.NATIVE_DIR / "linux-amd64")
        build_dll.build_wheel("linux-amd64", lib, wheels)
    except (SystemExit, subprocess.CalledProcessError) as e:
        pytest.fail(f"cannot build the Linux wheel: {e}", pytrace=False)
    # the dependencies, as the workflow puts them next to the wheel
    dl = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--only-binary", ":all:", "-d", str(wheels),
                         "cffi"], capture_output=True, text=True)  # fmt: skip
    assert dl.returncode == 0, dl.stdout + dl.stderr
    assert shutil.which("go") and shutil.which("gcc"), "this test proves they are hidden"
    proc = run("install", "--wheel-dir", str(wheels), "--venv", str(tmp_path / "venv"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"library {tmp_path / 'venv'}" in proc.stdout and "rmq_native-linux-amd64.so" in proc.stdout, proc.stdout


def test_install_fails_without_a_wheel(tmp_path: Path) -> None:
    proc = run("install", "--wheel-dir", str(tmp_path), "--venv", str(tmp_path / "venv"))
    assert proc.returncode == 1 and "no rmq_native wheel" in proc.stderr


def test_release_workflow_checks_and_publishes_the_same_files() -> None:
    """The parts of .github/workflows/wheels.yml a reader must be able to
    trust (the workflow cannot run here): one Linux build checked by the
    wheel/Wine tests, the Windows job using this script, publishing only
    after both, with the build's checksums verified."""
    text = (ROOT / ".github" / "workflows" / "wheels.yml").read_text(encoding="utf-8")
    jobs = text.split("\njobs:\n", 1)[1]
    build, rest = jobs.split("\n  windows:\n", 1)
    windows, publish = rest.split("\n  publish:\n", 1)
    assert "python build_dll.py --wheels --dist-dir dist" in build and "RMQ_NATIVE_DIST: dist" in build
    assert "tests/test_wheels.py tests/test_wheel_check.py tests/test_wine.py" in build
    assert "build_dll.py" not in windows + publish, "only the build job builds"
    assert "needs: build" in windows and "tools/wheel_check.py install --wheel-dir wheelhouse" in windows
    assert "wheel_check.py clean-path" in windows and "devbroker start" in windows
    assert '-m "not wine and not wheels and not reliability" tests \\\n' in windows
    assert "needs: [build, windows]" in publish and "sha256sum -c ../SHA256SUMS" in publish
    assert '"--no-index"' in SCRIPT.read_text(encoding="utf-8")
