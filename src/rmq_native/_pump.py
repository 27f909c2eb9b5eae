"""The helper threads of a client: each pulls records from one ``*_poll``
function of the library and hands them to a handler."""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable

from . import _ffi

logger = logging.getLogger("rmq_native")

RecordHandler = Callable[[Any, int, bytes, int], None]
"""``handler(owner, handle, data, count)``: the records a poll returned."""


def pull_loop(ref: weakref.ReferenceType[Any], poll: str, max_items: int, handle: RecordHandler) -> None:
    """Body of a client's helper thread: pull records with the library
    function ``poll`` in 200 ms slices and pass each batch to
    ``handle(owner, handle_id, data, count)``. It holds its owner weakly and
    ends when the owner is closed or gone."""
    ffi = _ffi.ffi
    lib = _ffi.lib()
    poll_fn = getattr(lib, poll)
    out = ffi.new("uint8_t **")
    out_len = ffi.new("int64_t *")
    count = ffi.new("int32_t *")
    while True:
        owner = ref()
        h = owner._handle if owner is not None else 0
        del owner
        if not h:
            return
        try:
            if poll_fn(h, max_items, 200, out, out_len, count) != 0:
                time.sleep(0.01)  # closed: the owner's handle goes to 0 in a moment
                continue
            if not count[0]:
                continue
            data = _ffi.take_buffer(out[0], out_len[0])
            owner = ref()
            if owner is not None:
                handle(owner, h, data, count[0])
        except Exception:  # the thread must outlive any failure: report, go on
            logger.exception("rmq_native: %s failed; the thread goes on", threading.current_thread().name)
            time.sleep(0.05)  # no busy loop if the failure repeats
        owner = None


def start(owner: Any, poll: str, max_items: int, handle: RecordHandler, name: str) -> threading.Thread:
    """Start a daemon thread running :func:`pull_loop` for owner."""
    thread = threading.Thread(target=pull_loop, args=(weakref.ref(owner), poll, max_items, handle), name=name,
                              daemon=True)
    thread.start()
    return thread
