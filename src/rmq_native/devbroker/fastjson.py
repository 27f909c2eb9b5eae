"""A parser for the JSON that RocketMQ's fastjson writes (bare integer map keys)."""

from __future__ import annotations

import json
from typing import Any, List


def loads(data: bytes) -> Any:
    """Parse fastjson output, which may use bare integer map keys (``{0:"a"}``)."""
    text = data.decode("utf-8")
    try:
        return json.loads(text)
    except ValueError:
        pass
    out: List[str] = []
    i, n, in_str = 0, len(text), False
    expect_key = False
    while i < n:
        ch = text[i]
        if in_str:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                in_str = False
            i += 1
            continue
        if ch == '"':
            in_str, expect_key = True, False
        elif ch in "{,":
            expect_key = True
        elif expect_key and (ch.isdigit() or ch == "-"):
            j = i + 1
            while j < n and text[j].isdigit():
                j += 1
            k = j
            while k < n and text[k].isspace():
                k += 1
            if k < n and text[k] == ":":
                out.append('"' + text[i:j] + '"')
                i, expect_key = j, False
                continue
            expect_key = False
        elif not ch.isspace():
            expect_key = False
        out.append(ch)
        i += 1
    return json.loads("".join(out))
