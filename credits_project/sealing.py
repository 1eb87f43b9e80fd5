"""Sealed tokens: bytes encrypted and authenticated with a key derived from `SECRET_KEY`, for
values handed to clients that they must neither read nor alter (the ledger's cursors).

AES-SIV (RFC 5297) both hides and authenticates, and binds the token to a context (authenticated
but not carried in it) so that a token is only good where it was issued. It needs no nonce: the
same plaintext and context seal to the same token, which reveals only that two tokens are equal.
Keys are derived per purpose; tokens sealed under a key in `SECRET_KEY_FALLBACKS` still open, so
that rotating the secret key does not break the walks under way.
"""

import base64
import binascii
import re
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESSIV
from django.conf import settings
from django.utils.crypto import salted_hmac

VERSION = b"\x01"  # the first byte of every token: the format, so that it can change
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,512}")


class BadToken(Exception):
    """A token that was not sealed here for this purpose and context, or was altered."""


@cache
def _cipher(secret: str, purpose: str) -> AESSIV:
    # SHA-512 gives the 64 bytes of an AES-256-SIV key.
    key = salted_hmac(f"credits.sealing.{purpose}", "key", secret=secret, algorithm="sha512")
    return AESSIV(key.digest())


def seal(plaintext: bytes, *, purpose: str, context: bytes) -> str:
    """`plaintext` encrypted under the current secret key, as URL-safe text."""
    sealed = _cipher(settings.SECRET_KEY, purpose).encrypt(plaintext, [VERSION, context])
    return _text(VERSION + sealed)


def unseal(token: str, *, purpose: str, context: bytes) -> bytes:
    """The plaintext of a token that `seal` made for this purpose and context; else `BadToken`."""
    if not TOKEN.fullmatch(token):
        raise BadToken
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise BadToken from None
    # One spelling per token: no other text (unused trailing bits changed) opens it too.
    if raw[:1] != VERSION or _text(raw) != token:
        raise BadToken
    for secret in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        try:
            return _cipher(secret, purpose).decrypt(raw[1:], [VERSION, context])
        except (InvalidTag, ValueError):
            continue
    raise BadToken


def _text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
