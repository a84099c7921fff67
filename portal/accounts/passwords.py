"""Password hashing and the rules a new password must meet (OWASP ASVS 5.0, chapter 6).

New hashes use ``PASSWORD_HASH_METHOD``: ``argon2id`` (argon2-cffi's RFC 9106 settings) in
production, or a Werkzeug method (the tests use a fast ``pbkdf2:sha256:1000``). Hashes made with
another method (older Werkzeug scrypt/pbkdf2, or argon2 with weaker settings) still verify, and
``needs_rehash`` tells the sign-in to store a fresh hash.
"""
from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import gettext as _
from werkzeug.security import check_password_hash, generate_password_hash

from portal.core.errors import ServiceError

MIN_LENGTH = 12
MAX_LENGTH = 128
ARGON2 = "argon2id"
MIN_ZXCVBN_SCORE = 2  # zxcvbn's estimate: 2 = more than ~10^8 guesses

_argon2 = PasswordHasher()  # argon2id, RFC 9106 "low memory" profile


def _method() -> str:
    return current_app.config.get("PASSWORD_HASH_METHOD") or ARGON2


def hash_password(password: str) -> str:
    method = _method()
    if method == ARGON2:
        return _argon2.hash(password)
    return generate_password_hash(password, method=method)


def verify_password(stored: str, password: str) -> bool:
    if not stored:
        return False
    if stored.startswith("$argon2"):
        try:
            return _argon2.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False
    try:
        return check_password_hash(stored, password)
    except ValueError:  # an unknown method
        return False


_dummy_hashes: dict[str, str] = {}


def burn_password_check(password: str) -> None:
    """Spend the time of a real check (for an unknown username: the answer's timing must not
    tell which accounts exist)."""
    method = _method()
    if method not in _dummy_hashes:
        _dummy_hashes[method] = hash_password("not a real password, only a timing guard")
    verify_password(_dummy_hashes[method], password)


def needs_rehash(stored: str) -> bool:
    """Whether ``stored`` was made with another method (or weaker settings) than configured."""
    method = _method()
    if method == ARGON2:
        return not stored.startswith("$argon2id$") or _argon2.check_needs_rehash(stored)
    used = stored.split("$", 1)[0]
    return used != method and used.split(":", 1)[0] != method


@cache
def _common_passwords() -> frozenset[str]:
    """zxcvbn's list of the 30,000 most common passwords (lower-case)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password_rules(password: str, username: str = "") -> None:
    """Refuse (``ServiceError`` on the ``password`` field) a password that is too short, too
    long, one of the common passwords, contains the username, or that zxcvbn finds easy to
    guess (sequences, repeats, keyboard patterns, dates, common words)."""
    password = password or ""
    if len(password) < MIN_LENGTH:
        raise ServiceError(_("The password must be at least %(n)d characters long.",
                             n=MIN_LENGTH), "password")
    if len(password) > MAX_LENGTH:
        raise ServiceError(_("The password may be at most %(n)d characters long.",
                             n=MAX_LENGTH), "password")
    folded = password.casefold()
    if folded in _common_passwords() or folded.strip() in _common_passwords():
        raise ServiceError(_("This password is one of the most common passwords; choose "
                             "another."), "password")
    name = (username or "").strip().casefold()
    if name and name in folded:
        raise ServiceError(_("The password must not contain the username."), "password")
    from zxcvbn import zxcvbn

    if zxcvbn(password, user_inputs=[name] if name else None)["score"] < MIN_ZXCVBN_SCORE:
        raise ServiceError(_("This password is too easy to guess (a common word, name, date, "
                             "sequence or keyboard pattern); add more words or characters."),
                           "password")
