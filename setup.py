"""Packaging: one ``py3-none-<platform>`` wheel per platform.

The package loads its Go library with cffi in ABI mode, so a wheel does not
depend on the Python version, only on the platform of the library inside.
Building from source (``pip install .``) compiles the library with Go
(``build_dll.py``) when the package does not hold one for this machine.
"""

import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

import build_dll  # noqa: E402

try:
    from wheel.bdist_wheel import bdist_wheel
except ImportError:  # pragma: no cover
    bdist_wheel = None


class BuildPyWithLibrary(build_py):
    """Build the native library for this machine when it is missing."""

    def run(self):
        target = build_dll.host_target()
        if not (build_dll.PKG_DIR / build_dll.library_name(target)).exists():
            build_dll.build(target)
        super().run()


cmdclass = {"build_py": BuildPyWithLibrary}

if bdist_wheel is not None:

    class PlatformWheel(bdist_wheel):
        """A platform wheel that works with every Python 3 (no extension module)."""

        def finalize_options(self):
            super().finalize_options()
            self.root_is_pure = False

        def get_tag(self):
            _, _, plat = super().get_tag()
            return "py3", "none", plat

    cmdclass["bdist_wheel"] = PlatformWheel

setup(cmdclass=cmdclass)
