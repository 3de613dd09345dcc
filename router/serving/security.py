"""Transport security and caller authentication.

TLS: ``--tls-cert`` and ``--tls-key`` serve over TLS; ``--tls-client-ca`` also requires
and verifies client certificates (mutual TLS). The files are read again when they
change (checked at each new connection's handshake), so certificates rotate without a
restart; a rotation that cannot be read keeps the last good certificates and logs why.

Tokens: ``--auth-tokens FILE`` holds one bearer token a line, optionally followed by
the word ``admin`` (``#`` starts a comment). Callers send ``authorization: Bearer
<token>``; tokens are compared in constant time and the file is read again when it
changes. With tokens configured, the admin RPCs (``Reload``: anything that changes
state) need an admin token, and classification needs any token unless
``classify_open``. Health and reflection stay open. No token or an unknown one is
UNAUTHENTICATED; a valid token without the admin word on an admin RPC is
PERMISSION_DENIED.
"""

from __future__ import annotations

import hmac
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from router.errors import StartError

__all__ = [
    "ADMIN_METHODS",
    "CertificateFiles",
    "TokenFile",
    "TokenInterceptor",
    "caller_token",
    "server_credentials",
]

log = logging.getLogger(__name__)

_SERVICE = "/router.api.v1.IntentRouter/"
#: Methods that change the server's state: always behind an admin token.
ADMIN_METHODS = frozenset({f"{_SERVICE}Reload", f"{_SERVICE}Rollback"})
#: Methods that are never behind a token.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class _Watched:
    """A file read again when its modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._missing = False  # the last look found no file (said once in the log)
        self._lock = threading.Lock()

    def changed(self) -> bool:
        try:
            stat = self.path.stat()
        except OSError as exc:
            # gone for a moment (a rotation in progress) or removed: keep what we have
            with self._lock:
                if not self._missing:
                    log.warning("%s cannot be read (%s): keeping what was read from it",
                                self.path, exc.strerror or exc)  # fmt: skip
                self._missing = True
            return False
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            self._missing = False
            if stamp == self._stamp:
                return False
            self._stamp = stamp
            return True


@dataclass(frozen=True)
class CertificateFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None  # set: clients must present a certificate it signed


def _read_certificates(files: CertificateFiles) -> Any:
    key, cert = files.key.read_bytes(), files.cert.read_bytes()
    ca = files.client_ca.read_bytes() if files.client_ca is not None else None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


def server_credentials(files: CertificateFiles) -> grpc.ServerCredentials:
    """Credentials whose certificates are read again when their files change."""
    watched = [_Watched(p) for p in (files.cert, files.key, files.client_ca) if p is not None]
    try:
        initial = _read_certificates(files)
    except OSError as exc:
        raise StartError(f"cannot read the TLS files: {exc}") from exc
    for w in watched:
        w.changed()  # record the stamps the initial configuration was read at

    def fetch() -> Any:
        if not any([w.changed() for w in watched]):  # every stamp, not the first change
            return None
        try:
            configuration = _read_certificates(files)
        except OSError as exc:
            log.error("TLS files changed but cannot be read (%s): keeping the last ones", exc)
            return None
        log.info("TLS certificates reloaded from %s", files.cert)
        return configuration

    return grpc.dynamic_ssl_server_credentials(
        initial, fetch, require_client_authentication=files.client_ca is not None
    )


class TokenFile:
    """Bearer tokens from a file, read again when it changes."""

    def __init__(self, path: Path) -> None:
        self._watched = _Watched(path)
        self._tokens: dict[bytes, bool] = {}  # token -> admin
        self._lock = threading.Lock()
        self._refresh(initial=True)

    def _refresh(self, *, initial: bool = False) -> None:
        if not self._watched.changed():
            return
        try:
            text = self._watched.path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            if initial:
                raise StartError(f"cannot read the token file: {exc}") from exc
            log.error("token file changed but cannot be read (%s): keeping the last tokens", exc)
            return
        tokens: dict[bytes, bool] = {}
        for line in text.splitlines():
            words = line.split("#", 1)[0].split()
            if words:
                tokens[words[0].encode("utf-8")] = "admin" in words[1:]
        if not tokens:
            if initial:
                raise StartError(f"{self._watched.path}: no tokens in the token file")
            if not text:  # 0 bytes: a save caught between its truncation and its write
                log.error("token file is empty: keeping the last %d tokens until it is "
                          "written", len(self._tokens))  # fmt: skip
                return
            log.warning("token file holds no tokens: every call that needs one is refused")
        with self._lock:
            self._tokens = tokens
        if not initial:
            log.info("token file reloaded: %d tokens", len(tokens))

    def check(self, token: str | None) -> bool | None:
        """None: no such token; else whether it is an admin token (constant-time compare)."""
        self._refresh()
        if token is None:
            return None
        given = token.encode("utf-8")
        with self._lock:
            tokens = list(self._tokens.items())
        found: bool | None = None
        for known, admin in tokens:  # compare with every token: no early exit
            if hmac.compare_digest(given, known):
                found = admin
        return found


def caller_token(metadata: Any) -> str | None:
    """The bearer token of ``authorization`` metadata, or None."""
    for key, value in metadata or ():
        if key.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class TokenInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    """Admission by bearer token; see the module doc for who needs what.

    The check runs in each call, from the call's own metadata: handlers are built once
    per method and reused (the metrics interceptor caches them), so the decision must
    never be baked into the handler returned here.
    """

    def __init__(self, tokens: TokenFile, *, classify_open: bool) -> None:
        self.tokens = tokens
        self.classify_open = classify_open

    async def intercept_service(
        self,
        continuation: Callable[
            [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any]]
        ],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any]:
        handler = await continuation(details)
        method = details.method
        admin_only = method in ADMIN_METHODS
        if (
            handler is None
            or method.startswith(_OPEN_PREFIXES)
            or (self.classify_open and not admin_only)
        ):
            return handler
        tokens = self.tokens

        async def admit(context: grpc.aio.ServicerContext[Any, Any]) -> None:
            admin = tokens.check(caller_token(context.invocation_metadata()))
            if admin is None:
                await context.abort(
                    grpc.StatusCode.UNAUTHENTICATED, "a valid bearer token is required"
                )
            if admin_only and not admin:
                await context.abort(
                    grpc.StatusCode.PERMISSION_DENIED, "this call needs an admin token"
                )

        if handler.stream_stream is not None:
            streamed = handler.stream_stream

            async def admitted_stream(
                requests: Any, context: grpc.aio.ServicerContext[Any, Any]
            ) -> AsyncIterator[Any]:
                await admit(context)  # before a single message is read
                async for response in streamed(requests, context):  # type: ignore[attr-defined,arg-type]
                    yield response

            return grpc.stream_stream_rpc_method_handler(
                admitted_stream,
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_unary is None:
            # a kind of method this service does not have: refused, never let through
            async def refused(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"{method} is not served")

            return grpc.unary_unary_rpc_method_handler(refused)
        inner = handler.unary_unary

        async def admitted(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            await admit(context)
            return await inner(request, context)  # type: ignore[arg-type]

        return grpc.unary_unary_rpc_method_handler(
            admitted,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )
