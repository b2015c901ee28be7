"""Password hashing: argon2id for new hashes, bcrypt verified for users migrated from Parse Server.

Hashing is slow by design, so it runs on worker threads (both libraries release the GIL) and never
on the event loop. A login for an unknown user verifies against a dummy hash, so the time taken does
not tell an unknown user from a wrong password.
"""

from __future__ import annotations

import asyncio

import argon2
import bcrypt

# OWASP's argon2id baseline (19 MiB, 2 passes, 1 lane): ~25 ms on one core of a small server.
_ARGON2 = argon2.PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
_DUMMY_HASH = _ARGON2.hash("bastion: a password nobody has")


class PasswordHasher:
    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(_ARGON2.hash, password)

    async def verify(self, password: str, stored: str | None) -> tuple[bool, bool]:
        """(matches, needs a new hash). ``stored`` None (no such user) costs the same as a miss."""
        return await asyncio.to_thread(_verify, password, stored)


def _verify(password: str, stored: str | None) -> tuple[bool, bool]:
    if not stored:
        _argon2_matches(_DUMMY_HASH, password)
        return False, False
    if stored.startswith(_BCRYPT_PREFIXES):
        try:
            ok = bcrypt.checkpw(password.encode("utf-8"), stored.encode("ascii"))
        except ValueError:  # a malformed hash matches nothing
            return False, False
        return ok, ok  # a bcrypt hash that matched is replaced by an argon2id one
    if stored.startswith("$argon2"):
        ok = _argon2_matches(stored, password)
        return ok, ok and _ARGON2.check_needs_rehash(stored)
    _argon2_matches(_DUMMY_HASH, password)  # unknown scheme: refuse, in the usual time
    return False, False


def _argon2_matches(stored: str, password: str) -> bool:
    try:
        return _ARGON2.verify(stored, password)
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False
