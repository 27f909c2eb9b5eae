"""Packaging: one ``py3-none-<platform>`` wheel per platform.

The package loads its Go library with cffi in ABI mode, so a wheel does not
depend on the Python version, only on the platform of the library inside.
Building from source (``pip install .``) compiles the library with Go
(``build_dll.py``) when the package does not hold one for this machine.

A wheel holds exactly one library: the one for this machine, or, when the
environment variable RMQ_NATIVE_TARGET names a target (``windows-amd64``,
``linux-amd64``, ...), that target's library (taken from the file
RMQ_NATIVE_LIBRARY when given) with the target's platform tag.
``python build_dll.py --wheels`` uses this to build every wheel.
"""

import os
import shutil
import sys
from pathlib import Path

from setuptools import Distribution, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import build_dll  # noqa: E402

try:
    from setuptools.command.bdist_wheel import bdist_wheel
except ImportError:  # setuptools < 70.1
    try:
        from wheel.bdist_wheel import bdist_wheel
    except ImportError:  # pragma: no cover
        bdist_wheel = None

_LIBRARY_SUFFIXES = (".so", ".dll", ".dylib")


def wheel_target() -> str:
    """The target whose library this build ships."""
    return os.environ.get("RMQ_NATIVE_TARGET") or build_dll.host_target()


class BuildPyWithLibrary(build_py):
    """Build the native library for this machine when it is missing, and
    ship exactly one library (never another platform's)."""

    def run(self):
        target = wheel_target()
        name = build_dll.library_name(target)
        given = os.environ.get("RMQ_NATIVE_LIBRARY")
        if not given and not (build_dll.PKG_DIR / name).exists():
            if target == build_dll.host_target():
                build_dll.build(target)
            else:
                build_dll.release_build(target)
        header = build_dll.GO_DIR / build_dll.HEADER
        if header.exists():  # keep the shipped copy of the contract current
            shutil.copyfile(header, build_dll.PKG_DIR / build_dll.HEADER)
        super().run()
        if given:
            dest = Path(self.build_lib) / "rmq_native" / name
            self.copy_file(given, str(dest))

    def find_data_files(self, package, src_dir):
        files = super().find_data_files(package, src_dir)
        keep = build_dll.library_name(wheel_target())
        if os.environ.get("RMQ_NATIVE_LIBRARY"):
            keep = None  # copied in run()
        return [f for f in files if not (Path(f).suffix in _LIBRARY_SUFFIXES and Path(f).name != keep)]


class PlatformDistribution(Distribution):
    """Holds a native library: install into platlib (wheel root), not into
    <name>.data/purelib, so that the wheel is a regular platform wheel."""

    def has_ext_modules(self):
        return True


cmdclass = {"build_py": BuildPyWithLibrary}

if bdist_wheel is not None:

    class PlatformWheel(bdist_wheel):
        """A platform wheel that works with every Python 3 (no extension module)."""

        def finalize_options(self):
            target = os.environ.get("RMQ_NATIVE_TARGET")
            if target and self.plat_name is None:
                self.plat_name = build_dll.PLATFORM_TAGS[target]
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel

setup(cmdclass=cmdclass, distclass=PlatformDistribution)
