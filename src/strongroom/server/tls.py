"""TLS in the server: ``serve --tls-cert FILE --tls-key FILE``, TLS 1.2 and up, reloaded on SIGHUP.

The listening socket keeps one :class:`ssl.SSLContext` for its life (asyncio's ``create_server``
takes it once), so a reload cannot replace it. Instead each handshake picks the newest
certificate: the listening context's SNI callback, which OpenSSL calls for every ClientHello
(with or without a server name), moves the connection onto the context loaded last. A reload
builds and checks a whole new context first: files that do not load (a key that does not match
its certificate, a half-written file) leave the previous certificate in service and say why in
one line. Connections already open keep the certificate they started with.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

__all__ = ["ReloadingTLS", "TLSError"]

log = logging.getLogger("strongroom.server")


class TLSError(Exception):
    """The certificate or key cannot be used; the text says which and why, in one line."""


class ReloadingTLS:
    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.current = self._load()
        self.context = self._load()  # the listener's: the handshake moves to ``current``
        self.context.sni_callback = self._choose

    def _load(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_COMPRESSION
        for path in (self.cert, self.key):
            if not path.is_file():  # OpenSSL's own error names no file
                raise TLSError(f"cannot use TLS: {path}: no such file")
        try:
            context.load_cert_chain(self.cert, self.key)
        except PermissionError:
            raise TLSError(f"cannot use TLS: {self.cert} or {self.key}: permission denied") from None
        except (ssl.SSLError, OSError) as exc:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc)
            raise TLSError(
                f"cannot use TLS with certificate {self.cert} and key {self.key}: {reason} "
                "(PEM files; the key must match the certificate's public key)"
            ) from None
        return context

    def _choose(self, connection: ssl.SSLObject, server_name: str | None, context: ssl.SSLContext) -> None:
        connection.context = self.current

    def reload(self) -> None:
        """Load the files again; new connections get the new certificate. On failure the old one
        stays in service and :class:`TLSError` says why."""
        self.current = self._load()
