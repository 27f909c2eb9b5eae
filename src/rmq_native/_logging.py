"""Forwards the Go SDK's log records to Python's ``logging``.

Records wait in a bounded buffer inside the library; one daemon thread
pulls them (in 200 ms slices) and emits them on the ``rmq_native`` logger.
The library itself never writes to stdout or stderr. The level follows
the logger's effective level. ``RMQ_NATIVE_LOG_LEVEL`` (a level name or
number) sets that logger's level and, when logging is not configured at
all, prints the records on stderr.
"""

from __future__ import annotations

import logging
import os
import threading

from . import _ffi, _wire

logger = logging.getLogger("rmq_native")

_started = False
_start_lock = threading.Lock()


def _env_level() -> int | None:
    env = os.environ.get("RMQ_NATIVE_LOG_LEVEL", "").strip().upper()
    if env.isdigit():
        return int(env)
    level = logging.getLevelName(env) if env else None
    return level if isinstance(level, int) else None


def _apply_env_level() -> None:
    level = _env_level()
    if level is None:
        return
    logger.setLevel(level)
    configured = logging.getLogger().handlers or any(
        not isinstance(h, logging.NullHandler) for h in logger.handlers
    )
    if not configured:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _wanted_level() -> int:
    return logger.getEffectiveLevel()


def _forward_logs() -> None:
    """Body of the log thread: pull records, emit them, follow the level."""
    lib = _ffi.lib()
    ffi = _ffi.ffi
    out = ffi.new("uint8_t **")
    out_len = ffi.new("int64_t *")
    count = ffi.new("int32_t *")
    current = -1
    while True:
        try:
            wanted = _wanted_level()
            if wanted != current:
                lib.rmq_set_log_level(wanted)
                current = wanted
            if lib.rmq_log_poll(200, out, out_len, count) != 0 or count[0] == 0:
                continue
            for level, text in _wire.log_records(_ffi.take_buffer(out[0], out_len[0]), count[0]):
                logger.log(level, "%s", text)
        except Exception:  # pragma: no cover - never let the pump die silently
            logger.debug("rmq_native log pump error", exc_info=True)
        except BaseException:  # interpreter shutdown
            return


def ensure_started() -> None:
    """Start the log pump once per process (called when a client is made)."""
    global _started
    if _started:
        return
    with _start_lock:
        if _started:
            return
        _apply_env_level()
        _ffi.lib().rmq_set_log_level(_wanted_level())
        threading.Thread(target=_forward_logs, name="rmq_native-log", daemon=True).start()
        _started = True
