"""The server's TLS context: modern defaults, a certificate loaded with one clear error.

``ssl.create_default_context(Purpose.CLIENT_AUTH)`` is the standard library's secure server
context (no SSLv3, no compression, good ciphers); TLS 1.2 is the oldest version accepted,
and a client's renegotiation is refused.
:func:`load_certificate` loads the chain into an existing context, so a reload on SIGHUP
changes what *new* handshakes present while established connections go on untouched.
"""

from __future__ import annotations

import logging
import ssl

log = logging.getLogger("chatroom.server")


class CertificateError(Exception):
    """The certificate or key cannot be used; the message is one line for the operator."""


def server_context(cert: str, key: str | None) -> ssl.SSLContext:
    """A server-side context presenting ``cert`` (a PEM chain) with ``key`` (None: the key
    is in ``cert``'s file); raises :class:`CertificateError`."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No TLS 1.2 renegotiation (TLS 1.3 has none): a client's request is refused, not a
    # second handshake's worth of CPU on demand, mid-stream.
    context.options |= ssl.OP_NO_RENEGOTIATION
    load_certificate(context, cert, key)
    return context


def load_certificate(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    """Load ``cert`` and ``key`` into ``context`` (new handshakes present them); raises
    :class:`CertificateError`, leaving the context as it was."""
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is None:
            continue
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise CertificateError(f"{flag} {path}: {exc.strerror or exc}") from None
    try:
        # Tried on a fresh context first: a failed load_cert_chain may already have replaced
        # the certificate, leaving a live context with a new certificate and the old key.
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        what = "key values mismatch" if exc.reason == "KEY_VALUES_MISMATCH" else exc.reason
        files = f"{cert} and {key}" if key else cert
        raise CertificateError(
            f"--tls-cert/--tls-key: {files} are not a PEM certificate chain and its private "
            f"key ({what or exc})"
        ) from None


def reload_certificate(context: ssl.SSLContext, cert: str, key: str | None) -> None:
    """SIGHUP: load the certificate and key files again; new handshakes present them,
    established connections go on. A failure is logged and the old one stays."""
    try:
        load_certificate(context, cert, key)
    except CertificateError as exc:
        log.error("certificate not reloaded, the old one stays: %s", exc)
    else:
        log.info("certificate reloaded from %s", cert)
