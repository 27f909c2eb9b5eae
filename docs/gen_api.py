"""Generate docs/api.md, the API reference, from the package's docstrings.

    python docs/gen_api.py          # rewrite docs/api.md
    python docs/gen_api.py --check  # exit 1 if docs/api.md is out of date
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import rmq_native  # noqa: E402
from rmq_native import aio  # noqa: E402

OUT = ROOT / "docs" / "api.md"


def doc(obj: object) -> str:
    return inspect.cleandoc(inspect.getdoc(obj) or "(undocumented)")


def signature(obj: object) -> str:
    try:
        return str(inspect.signature(obj))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "(...)"


def render_class(prefix: str, cls: type) -> list[str]:
    lines = [f"## `{prefix}{cls.__name__}{signature(cls)}`", "", doc(cls), ""]
    if issubclass(cls, BaseException) or getattr(cls, "__members__", None):
        return lines
    for name, member in sorted(vars(cls).items()):
        if name.startswith("_"):
            continue
        if isinstance(member, property):
            lines += [f"### `{cls.__name__}.{name}` (property)", "", doc(member), ""]
        elif inspect.isfunction(member):
            lines += [f"### `{cls.__name__}.{name}{signature(member)}`", "", doc(member), ""]
    return lines


def render() -> str:
    lines = ["# rmq_native API reference", "", "Generated from the docstrings by `python docs/gen_api.py`.", ""]
    for name in rmq_native.__all__:
        obj = getattr(rmq_native, name)
        if inspect.isclass(obj):
            lines += render_class("rmq_native.", obj)
    lines += ["# rmq_native.aio", "", doc(aio), ""]
    for name in aio.__all__:
        obj = getattr(aio, name)
        if inspect.isfunction(obj):
            lines += [f"## `rmq_native.aio.{name}{signature(obj)}`", "", doc(obj), ""]
        else:
            lines += render_class("rmq_native.aio.", obj)
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":
    text = render()
    if "--check" in sys.argv:
        sys.exit(0 if OUT.exists() and OUT.read_text() == text else 1)
    OUT.write_text(text)
    print(f"wrote {OUT}")
