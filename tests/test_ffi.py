"""The C ABI: the header contract, the error protocol, panics, fork."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

import rmq_native
from rmq_native import _ffi

ROOT = Path(__file__).resolve().parents[1]


def _prototypes(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (return type, [parameter types]) of every rmq_* prototype."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    out = {}
    for m in re.finditer(r"^[ \t]*([\w \t\*]+?)[ \t]*\b(rmq_\w+)\s*\(([^)]*)\)\s*;", text, re.M):
        ret, name, params = m.groups()
        types = []
        for p in params.split(","):
            p = p.strip()
            if p in ("", "void"):
                continue
            p = re.sub(r"\s*\*\s*", "*", p)
            p = re.sub(r"\bconst\b\s*", "", p)
            # drop the parameter name: the last identifier
            types.append(re.sub(r"\s*\b\w+$", "", p).strip() if not p.endswith("*") else p)
        ret = re.sub(r"\s+", " ", re.sub(r"\bextern\b", "", ret)).strip()
        out[name] = (ret, types)
    return out


@pytest.mark.skipif(shutil.which("go") is None, reason="needs the Go toolchain to generate cgo's header")
def test_header_matches_cgo_generated_header(tmp_path: Path) -> None:
    go_dir = ROOT / "go"
    files = sorted(p.name for p in go_dir.glob("*.go")
                   if not p.name.endswith("_test.go") and 'import "C"' in p.read_text())  # cgo files only
    subprocess.run(
        ["go", "tool", "cgo", "-objdir", str(tmp_path), "-exportheader", str(tmp_path / "gen.h"), *files],
        cwd=go_dir, check=True,
    )
    generated = _prototypes((tmp_path / "gen.h").read_text())
    hand = _prototypes((go_dir / "rmq_native.h").read_text())
    assert hand, "no prototypes found in the hand-written header"
    assert set(hand) == set(generated)
    for name in hand:
        assert hand[name] == generated[name], name


def test_packaged_header_is_the_contract() -> None:
    assert _ffi.HEADER.read_text() == (ROOT / "go" / "rmq_native.h").read_text()


def test_every_header_function_is_in_the_cdef() -> None:
    lib = _ffi.lib()
    for name in _prototypes(_ffi.HEADER.read_text()):
        assert callable(getattr(lib, name)), name
    assert lib.RMQ_ERR_INVALID_ARGUMENT == rmq_native.InvalidArgumentError.default_code
    assert lib.RMQ_ERR_NO_ROUTE == rmq_native.NoRouteError.default_code


def test_library_version_matches_package() -> None:
    buf = _ffi.ffi.new("char[]", 32)
    assert _ffi.lib().rmq_version(buf, 32) == 0
    assert _ffi.ffi.string(buf).decode() == rmq_native.__version__


def test_go_panic_becomes_internal_error_and_process_lives() -> None:
    for _ in range(3):
        with pytest.raises(rmq_native.InternalError) as ei:
            _ffi.check(_ffi.lib().rmq_debug_panic())
        assert "recovered panic" in str(ei.value)
        assert ei.value.code == 6 and not ei.value.retriable


def test_last_error_is_per_thread() -> None:
    lib = _ffi.lib()
    assert lib.rmq_debug_panic() == 6
    seen: list[str] = []

    def other() -> None:
        seen.append(_ffi.last_error())

    t = threading.Thread(target=other)
    t.start()
    t.join()
    assert seen == [""]
    assert "recovered panic" in _ffi.last_error()


def test_long_error_message_is_not_truncated() -> None:
    lib = _ffi.lib()
    cfg = b'{"name_server": "' + b"x" * 5000 + b'"}'
    out = _ffi.ffi.new("uint64_t *")
    assert lib.rmq_producer_new(cfg, len(cfg), out) == 1
    assert _ffi.last_error().count("x") >= 5000


def test_unknown_config_key_is_rejected() -> None:
    cfg = b'{"name_server": "127.0.0.1:9876", "bogus": 1}'
    out = _ffi.ffi.new("uint64_t *")
    rc = _ffi.lib().rmq_producer_new(cfg, len(cfg), out)
    with pytest.raises(rmq_native.InvalidArgumentError, match="bogus"):
        _ffi.check(rc)


def test_consumer_prefetch_outside_the_sdks_range_is_rejected(rocketmq_namesrv: str) -> None:
    """The library checks what the Python layer checks too (callers of the
    C ABI get the same answer)."""
    cfg = json.dumps({"name_server": rocketmq_namesrv, "group": "g", "max_prefetch_mib": 2048,
                      "subscriptions": [{"topic": "t", "type": "tag", "expression": "*"}]}).encode()
    out = _ffi.ffi.new("uint64_t *")
    rc = _ffi.lib().rmq_consumer_new(cfg, len(cfg), out)
    with pytest.raises(rmq_native.InvalidArgumentError, match="max_prefetch_mib must be 1 to 1024, not 2048"):
        _ffi.check(rc)


def test_closed_handles_are_rejected() -> None:
    lib = _ffi.lib()
    out = _ffi.ffi.new("rmq_send_result *")
    m = _ffi.ffi.new("rmq_message *")
    with pytest.raises(rmq_native.ClosedError):
        _ffi.check(lib.rmq_producer_send(987654321, m, 100, out))
    assert lib.rmq_consumer_close(987654321) == 0  # idempotent


def test_missing_library_error_names_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ffi, "library_filename", lambda: "rmq_native-plan9-mips.so")
    with pytest.raises(rmq_native.LibraryError, match="plan9"):
        _ffi._load()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_fork_child_gets_clear_error_instead_of_hanging() -> None:
    code = (
        "import os, sys\n"
        "import rmq_native\n"
        "from rmq_native import _ffi\n"
        "_ffi.lib()\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        "        rmq_native.Producer('127.0.0.1:9876')\n"
        "    except rmq_native.RocketMQError as e:\n"
        "        os._exit(0 if 'fork' in str(e) else 3)\n"
        "    os._exit(4)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], timeout=60)
    assert r.returncode == 0


def test_huge_lengths_are_rejected_not_truncated_or_fatal() -> None:
    """int64 lengths beyond a C int: [2^31, 2^32) used to abort the process
    (Go out-of-memory fatal error), larger ones were silently truncated.
    Run in a child process so that a regression cannot kill the test run."""
    code = textwrap.dedent(
        """
        import sys
        import rmq_native
        from rmq_native import _ffi
        lib, ffi = _ffi.lib(), _ffi.ffi
        buf = ffi.new("char[]", b'{"name_server": "127.0.0.1:9876"}')
        out = ffi.new("uint64_t *")
        for n in (2**31, 2**31 + 5, 2**32 - 1, 2**32 + 3, 2**40 + 3, 2**63 - 1, -1):
            for fn, args in (("rmq_producer_new", (buf, n, out)), ("rmq_consumer_new", (buf, n, out)),
                             ("rmq_set_state_dir", (buf, n))):
                rc = getattr(lib, fn)(*args)
                err = _ffi.last_error()
                if rc != lib.RMQ_ERR_INVALID_ARGUMENT or "length" not in err:
                    print(fn, n, rc, err)
                    sys.exit(1)
        print("ok")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": str(Path(rmq_native.__file__).parents[1])})
    assert r.returncode == 0 and r.stdout.strip() == "ok", (r.stdout, r.stderr[-2000:])


def _debug_stat_in_a_new_process(key: str, env_name: str, env_value: str | None) -> int:
    """rmq_debug_stats' key as a new process sees it at load, with env_name
    removed from its environment (None) or set to env_value."""
    code = textwrap.dedent(
        f"""
        import json
        from rmq_native import _ffi
        out, n = _ffi.ffi.new("uint8_t **"), _ffi.ffi.new("int64_t *")
        _ffi.check(_ffi.lib().rmq_debug_stats(out, n))
        print(json.loads(_ffi.take_buffer(out[0], n[0]))[{key!r}])
        """
    )
    env = {k: v for k, v in os.environ.items() if k != env_name}
    if env_value is not None:
        env[env_name] = env_value
    env["PYTHONPATH"] = str(Path(rmq_native.__file__).parents[1])
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return int(r.stdout.strip())


@pytest.mark.parametrize("env_gogc,expected", [(None, 300), ("50", 50), ("off", -1)])
def test_the_library_raises_the_heap_minimum_unless_the_environment_has_gogc(env_gogc: str | None,
                                                                           expected: int) -> None:
    # go/gc.go: the live Go heap is 1-3 MiB, so at the runtime's heap
    # minimum of 4 MiB a busy client collects hundreds of times a second;
    # the library sets GOGC for a minimum of 12 MiB (300 while the heap is
    # small, as at load; go/gc_test.go follows it up and down) and leaves a
    # GOGC from the environment alone.
    assert _debug_stat_in_a_new_process("gogc", "GOGC", env_gogc) == expected


@pytest.mark.parametrize(
    ("env_spin", "expected"),
    [(None, 200), ("0", 0), ("50", 50), ("99999", 10000), ("-3", 0), ("fast", 200), ("", 200)],
)
def test_the_spin_of_a_lone_synchronous_send_is_bounded_by_the_environment(env_spin: str | None,
                                                                          expected: int) -> None:
    # go/waiter.c: a thread that waits alone for a synchronous send's answer
    # spins first while recent answers came fast; RMQ_NATIVE_WAIT_SPIN_US
    # bounds it (a whole number clamped to 0..10000; 0: never spin) and
    # anything else leaves the default.
    assert _debug_stat_in_a_new_process("wait_spin_us", "RMQ_NATIVE_WAIT_SPIN_US", env_spin) == expected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX-only")
def test_fork_child_of_a_parent_that_never_loaded_the_library_can_use_it(rocketmq_namesrv: str) -> None:
    code = (
        "import os, sys\n"
        "import rmq_native\n"
        "from rmq_native import _ffi\n"
        "assert _ffi._lib is None\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    try:\n"
        f"        with rmq_native.Admin({rocketmq_namesrv!r}) as a:\n"
        "            a.create_topic('fork_child_topic', queues=1)\n"
        f"        with rmq_native.Producer({rocketmq_namesrv!r}) as p:\n"
        "            p.send('fork_child_topic', b'from the child')\n"
        "    except BaseException as e:\n"
        "        print(repr(e), flush=True)\n"
        "        os._exit(3)\n"
        "    os._exit(0)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(Path(rmq_native.__file__).parents[1])})
    assert r.returncode == 0, (r.stdout, r.stderr[-2000:])


def test_declarations_are_generated_from_the_header(tmp_path: Path) -> None:
    """build_dll.py writes _ffi_decls.py from the header (no C parser at run
    time); the package uses it only while it matches the header."""
    from cffi import FFI

    assert not isinstance(_ffi.ffi, FFI), "_ffi_decls.py is missing or stale: run python build_dll.py"
    out = _ffi.write_declarations(_ffi.HEADER, tmp_path)
    assert out.read_text() == (_ffi.HEADER.parent / "_ffi_decls.py").read_text()
    # a header that changed after the build is parsed at load instead
    code = textwrap.dedent(
        """
        import sys
        from pathlib import Path
        from cffi import FFI
        from rmq_native import _ffi
        header = Path(sys.argv[1])
        header.write_text(_ffi.HEADER.read_text() + "\\n/* changed */\\n")
        _ffi.HEADER = header
        assert isinstance(_ffi._declarations(), FFI)
        """
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "rmq_native.h")], check=True,
                   env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))


@pytest.mark.skipif(sys.platform == "win32", reason="platform.machine() is the library's name on Windows")
def test_loading_imports_no_c_parser_and_no_platform_module() -> None:
    """What every process pays at import stays small: the declarations are
    pre-generated (no pycparser) and the machine comes from os.uname (the
    platform module is 2 ms and 160 KiB)."""
    code = ("import sys; before = set(sys.modules)\n"
            "import rmq_native; rmq_native._ffi.lib()\n"
            "print(sorted({'pycparser', 'platform'} & (set(sys.modules) - before)))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "[]", r.stdout
