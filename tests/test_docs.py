"""The documentation stays true: API reference current, public surface documented."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import rmq_native
from rmq_native import aio

ROOT = Path(__file__).resolve().parents[1]


def test_api_reference_is_current() -> None:
    r = subprocess.run([sys.executable, str(ROOT / "docs" / "gen_api.py"), "--check"])
    assert r.returncode == 0, "docs/api.md is out of date: run python docs/gen_api.py"


def test_every_public_name_is_documented() -> None:
    missing = []
    for module in (rmq_native, aio):
        for name in module.__all__:
            obj = getattr(module, name)
            if not inspect.isclass(obj):
                continue
            if not inspect.getdoc(obj):
                missing.append(name)
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and (inspect.isfunction(member) or isinstance(member, property)):
                    if not inspect.getdoc(member):
                        missing.append(f"{name}.{attr}")
    assert missing == []


def test_readme_commands_are_the_ci_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_cmd = 'python -m pip install -e ".[test]" && python -m pytest -v'
    assert test_cmd in readme and test_cmd in ci
    assert "python -m pip install . && python examples/quickstart.py" in readme
