"""Password hashing: argon2id for new hashes, Parse Server's bcrypt hashes verified and upgraded."""

from __future__ import annotations

import time

import bcrypt

from bastion.domain.passwords import PasswordHasher


async def test_new_hashes_are_argon2id_and_verify() -> None:
    hasher = PasswordHasher()
    stored = await hasher.hash("correct horse")
    assert stored.startswith("$argon2id$")
    assert await hasher.verify("correct horse", stored) == (True, False)
    assert await hasher.verify("wrong", stored) == (False, False)


async def test_bcrypt_hashes_from_parse_server_verify_and_ask_for_an_upgrade() -> None:
    hasher = PasswordHasher()
    for prefix in (b"2a", b"2b"):
        stored = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4, prefix=prefix)).decode()
        assert await hasher.verify("s3cret", stored) == (True, True)
        assert await hasher.verify("other", stored) == (False, False)
    # $2y$ (PHP's spelling) is the same algorithm.
    stored = bcrypt.hashpw(b"s3cret", bcrypt.gensalt(4)).decode().replace("$2b$", "$2y$", 1)
    assert await hasher.verify("s3cret", stored) == (True, True)


async def test_missing_or_unknown_hashes_refuse_in_the_time_of_a_real_check() -> None:
    hasher = PasswordHasher()
    stored = await hasher.hash("pw")
    for stored_value in (None, "", "plaintext", "$2b$04$broken"):
        assert await hasher.verify("pw", stored_value) == (False, False)
    # Best of several runs each: the fastest run is the cost of the work itself, free of the
    # scheduling noise a busy machine adds to any single run.
    missing = await _fastest(lambda: hasher.verify("pw", None))
    wrong = await _fastest(lambda: hasher.verify("nope", stored))
    assert missing > wrong / 3, (missing, wrong)  # the dummy hash costs what a real one does


async def _fastest(check, runs: int = 7) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        await check()
        best = min(best, time.perf_counter() - start)
    return best
