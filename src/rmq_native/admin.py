"""Topic administration."""

from __future__ import annotations

from typing import Any

from . import _ffi
from ._client import (
    NativeClient,
    check_name_server,
    check_text,
    check_timeout,
    check_topic,
    check_type,
    config_json,
    to_ms,
)
from .errors import InvalidArgumentError

__all__ = ["Admin"]


class Admin(NativeClient):
    """Creates and deletes topics on every master broker of a cluster.

    Args:
        name_server: ``"host:port"`` of the name server.
        timeout: seconds per broker request.
        namespace, access_key, secret_key: as for :class:`Producer`.
    """

    _kind = "admin"

    def __init__(
        self,
        name_server: str,
        *,
        timeout: float = 5.0,
        namespace: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
    ) -> None:
        self._handle = 0
        name_server = check_name_server(name_server)
        t = check_timeout("timeout", timeout)
        for n, s in (("namespace", namespace), ("access_key", access_key), ("secret_key", secret_key)):
            if s is not None:
                check_text(n, s)
        self.name_server = name_server
        super().__init__(
            "rmq_admin_new",
            "rmq_admin_close",
            config_json(name_server=name_server, timeout_ms=to_ms(t or 0), namespace=namespace,
                        access_key=access_key, secret_key=secret_key),
        )

    def __repr__(self) -> str:
        return f"<rmq_native.Admin name_server={self.name_server!r} {'closed' if self.closed else 'open'}>"

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Release the admin client. Idempotent."""
        self._release_handle()

    def create_topic(self, topic: str, queues: int = 4, *, cluster: str | None = None) -> None:
        """Create (or update) ``topic`` with ``queues`` read/write queues on
        every master broker (of ``cluster`` if given)."""
        t = check_topic(topic).encode("utf-8")
        check_type("queues", queues, int, "an int")
        if not 1 <= queues <= 1024:
            raise InvalidArgumentError(f"queues must be 1..1024, not {queues}")
        c = b"" if cluster is None else check_text("cluster", cluster).encode("utf-8")
        _ffi.check(_ffi.lib().rmq_admin_create_topic(self._h(), t, len(t), queues, c, len(c)))

    def delete_topic(self, topic: str) -> None:
        """Delete ``topic`` from every master broker and the name servers."""
        t = check_topic(topic).encode("utf-8")
        _ffi.check(_ffi.lib().rmq_admin_delete_topic(self._h(), t, len(t)))
