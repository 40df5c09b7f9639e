"""Operators' passwords: the scrypt form ``--ops-file`` keeps them in, and the check. No I/O.

The ops file lists one ``NAME scrypt$N$R$P$SALT$HASH`` a line (made by ``chatroom-server
hash-password``); :func:`parse_operators` reads its text. A check costs scrypt's ~50 ms,
which is why the room hands it to the adapter to run off the event loop.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import fields

from chatroom import protocol as p
from chatroom.server.config import ServerConfig

# scrypt's cost for new hashes: the config's (16 MiB and ~50 ms a check).
_CONFIG = {field.name: field.default for field in fields(ServerConfig)}
SCRYPT_N, SCRYPT_R, SCRYPT_P = _CONFIG["scrypt_n"], _CONFIG["scrypt_r"], _CONFIG["scrypt_p"]
_MAX_N = 2**16  # refuse a file whose hash would take more memory than scrypt allows


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The ``scrypt$N$R$P$SALT$HASH`` form of ``password`` (salt and hash in base64)."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a ``scrypt$...`` form), in constant time."""
    n, r, par, salt, digest = _parse_hash(stored)
    tried = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=par, dklen=len(digest), maxmem=2**26
    )
    return hmac.compare_digest(tried, digest)


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    kind, n, r, par, salt, digest = stored.split("$")
    if kind != "scrypt":
        raise ValueError(f"unknown hash kind {kind!r} (scrypt$... expected)")
    n_, r_, p_ = int(n), int(r), int(par)
    if not (1 < n_ <= _MAX_N and n_ & (n_ - 1) == 0 and 1 <= r_ <= 32 and 1 <= p_ <= 16):
        raise ValueError("scrypt parameters out of range")
    return (
        n_,
        r_,
        p_,
        base64.b64decode(salt, validate=True),
        base64.b64decode(digest, validate=True),
    )


def parse_operators(text: str) -> dict[str, tuple[str, str]]:
    """The operators listed in an ops file: ``name_key(NAME) -> (NAME, hash)``.

    Blank lines and ``#`` comments are skipped; a bad line raises ValueError naming it."""
    operators: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            name, stored = line.split()
            problem = p.name_problem(name)
            if problem:
                raise ValueError(problem)
            _parse_hash(stored)
        except ValueError as exc:
            detail = str(exc) if "unpack" not in str(exc) else "expected: NAME scrypt$..."
            raise ValueError(f"line {number}: {detail}") from None
        operators[p.name_key(name)] = (name, stored)
    return operators
