"""Operators' passwords: the scrypt form ``--ops-file`` keeps them in, and the check. No I/O.

The ops file lists one ``NAME scrypt$N$R$P$SALT$HASH`` a line (made by ``chatroom-server
hash-password``); :func:`parse_operators` reads its text and refuses, naming the line,
every hash a check could not run on or would take too long for: a check costs scrypt's
~50 ms, which is why the room hands it to the adapter to run off the event loop
(:class:`~chatroom.server.core.actions.CheckOperator`), and it must never fail there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from dataclasses import fields
from typing import NamedTuple

from chatroom import protocol as p
from chatroom.server.config import ServerConfig

# scrypt's cost for new hashes: the config's (16 MiB and ~50 ms a check).
_CONFIG = {field.name: field.default for field in fields(ServerConfig)}
SCRYPT_N, SCRYPT_R, SCRYPT_P = _CONFIG["scrypt_n"], _CONFIG["scrypt_r"], _CONFIG["scrypt_p"]
# What one check may take: memory (as OpenSSL counts it, 128*r*(N+p+2) bytes) and work
# (N*r*p: 8 times the default's, several tenths of a second).
MAX_MEMORY = 2**26
MAX_COST = 8 * SCRYPT_N * SCRYPT_R * SCRYPT_P
SALT_BYTES = (8, 64)
HASH_BYTES = (16, 64)


class Scrypt(NamedTuple):
    """A hash's parameters, salt and digest, as :func:`parse_hash` checked them."""

    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes


def hash_password(password: str, salt: bytes | None = None) -> str:
    """The ``scrypt$N$R$P$SALT$HASH`` form of ``password`` (salt and hash in base64)."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    return _form(Scrypt(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, digest))


def _form(hashed: Scrypt) -> str:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"scrypt${hashed.n}${hashed.r}${hashed.p}${b64(hashed.salt)}${b64(hashed.digest)}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored`` (a ``scrypt$...`` form), in constant time.
    It takes scrypt's time: never on the event loop."""
    n, r, par, salt, digest = parse_hash(stored)
    tried = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"),
        salt=salt,
        n=n,
        r=r,
        p=par,
        dklen=len(digest),
        maxmem=MAX_MEMORY,
    )
    return hmac.compare_digest(tried, digest)


def decoy_for(stored: str | None) -> str:
    """A hash no password matches, that costs a check what ``stored`` does (the defaults'
    if None): checked for a name that is no operator's, so that no timing tells which names
    are. Made without hashing (a random digest)."""
    if stored is None:
        like = Scrypt(SCRYPT_N, SCRYPT_R, SCRYPT_P, bytes(16), bytes(64))
    else:
        like = parse_hash(stored)
    return _form(
        like._replace(salt=os.urandom(len(like.salt)), digest=os.urandom(len(like.digest)))
    )


def parse_hash(stored: str) -> Scrypt:
    """``stored`` read and checked: ValueError saying what is wrong, if a check could not
    run on it (scrypt would refuse its memory) or would take too long."""
    kind, n, r, par, salt, digest = stored.split("$")
    if kind != "scrypt":
        raise ValueError(f"unknown hash kind {kind!r} (scrypt$... expected)")
    if not all(text.isascii() and text.isdigit() and len(text) <= 10 for text in (n, r, par)):
        raise ValueError("scrypt parameters out of range (N, r and p are whole numbers)")
    n_, r_, p_ = int(n), int(r), int(par)
    if not (n_ > 1 and n_ & (n_ - 1) == 0 and r_ >= 1 and p_ >= 1):
        raise ValueError("scrypt parameters out of range (N a power of two, r and p at least 1)")
    memory = 128 * r_ * (n_ + p_ + 2)
    if memory > MAX_MEMORY:
        raise ValueError(
            f"scrypt needs {memory >> 20} MiB a check with N={n_} r={r_} p={p_}, more than "
            f"the {MAX_MEMORY >> 20} MiB allowed"
        )
    if n_ * r_ * p_ > MAX_COST:
        raise ValueError(
            f"scrypt costs N*r*p = {n_ * r_ * p_} a check, more than {MAX_COST} (8 times "
            "the default's)"
        )
    try:
        salt_, digest_ = (base64.b64decode(part, validate=True) for part in (salt, digest))
    except binascii.Error:
        raise ValueError("the salt or the hash is not valid base64") from None
    if not SALT_BYTES[0] <= len(salt_) <= SALT_BYTES[1]:
        raise ValueError(f"a salt of {len(salt_)} bytes ({SALT_BYTES[0]} to {SALT_BYTES[1]})")
    if not HASH_BYTES[0] <= len(digest_) <= HASH_BYTES[1]:
        raise ValueError(f"a hash of {len(digest_)} bytes ({HASH_BYTES[0]} to {HASH_BYTES[1]})")
    return Scrypt(n_, r_, p_, salt_, digest_)


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
            parse_hash(stored)
        except ValueError as exc:
            detail = str(exc) if "unpack" not in str(exc) else "expected: NAME scrypt$..."
            raise ValueError(f"line {number}: {detail}") from None
        operators[p.name_key(name)] = (name, stored)
    return operators
