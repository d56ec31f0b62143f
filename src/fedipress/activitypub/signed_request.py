"""What both HTTP signature schemes share: request data, claims, time and key helpers.

Pure: no clock, no network, no globals. `cavage.py` and `rfc9421.py` build on this module;
`httpsig.py` is the public facade that re-exports what callers need. Every failure raises
`SignatureError` whose `reason` is short and safe to return to the sender.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal, NoReturn, TypeAlias
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from ..errors import SignatureError

__all__ = [
    "DEFAULT_MAX_SKEW",
    "MAX_SIGNATURE_HEADER",
    "HeaderFields",
    "HeaderInput",
    "PrivateKey",
    "PublicKey",
    "Scheme",
    "SignatureClaim",
    "SignedRequestParts",
    "VerifiedSignature",
    "b64decode",
    "check_window",
    "content_digest_header",
    "digest_header",
    "fail",
    "from_timestamp",
    "header_value",
    "http_date",
    "needs_digest",
    "parse_http_date",
    "sign_bytes",
    "split_target",
    "split_url",
    "verify_bytes",
]


PrivateKey: TypeAlias = rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = rsa.RSAPublicKey | ed25519.Ed25519PublicKey
# A mapping (httpx.Headers, starlette Headers, dict) or raw (name, value) pairs; names are
# case-insensitive and repeated names are joined with ", " as both specifications require.
HeaderInput: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]
Scheme = Literal["cavage", "rfc9421"]

DEFAULT_MAX_SKEW = timedelta(hours=1)
# A signature header longer than this is not something any server sends; refusing it early
# bounds the work an anonymous sender can cause before any key is fetched.
MAX_SIGNATURE_HEADER = 8192
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


# --------------------------------------------------------------------------------------------
# Request data


class HeaderFields(Mapping[str, str]):
    """Read-only, case-insensitive header map; repeated names joined with ", "."""

    def __init__(self, headers: HeaderInput) -> None:
        pairs: Iterable[tuple[str, str]]
        multi = getattr(headers, "multi_items", None)  # httpx.Headers keeps repeats here
        if callable(multi):
            pairs = multi()
        elif isinstance(headers, Mapping):
            pairs = headers.items()
        else:
            pairs = headers
        joined: dict[str, list[str]] = {}
        for name, value in pairs:
            joined.setdefault(name.lower(), []).append(value.strip(" \t"))
        self._data = {name: ", ".join(values) for name, values in joined.items()}

    def __getitem__(self, name: str) -> str:
        return self._data[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


@dataclass(frozen=True)
class SignedRequestParts:
    """What a signature covers: method, target (`path?query` as sent), headers, body."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes

    @classmethod
    def of(
        cls, method: str, target: str, headers: HeaderInput, body: bytes | None
    ) -> SignedRequestParts:
        return cls(method.upper(), target, HeaderFields(headers), body or b"")


@dataclass(frozen=True)
class SignatureClaim:
    """A signature that passed every check that needs no key; `verify_claim` finishes it.

    `bases` holds the candidate signed byte strings (draft-cavage: with the query string, then
    without it, for GoToSocial/Mastodon compatibility)."""

    key_id: str
    scheme: Scheme
    algorithm: str | None  # as declared by the sender; None means "infer from the key"
    covered: tuple[str, ...]
    created: datetime | None
    bases: tuple[bytes, ...]
    signature: bytes


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified with the sender's key."""

    key_id: str
    scheme: Scheme
    covered: tuple[str, ...]
    created: datetime | None


def fail(reason: str) -> NoReturn:
    raise SignatureError(reason)


# --------------------------------------------------------------------------------------------
# Small helpers


def digest_header(body: bytes) -> str:
    """The draft-cavage `Digest` value: `SHA-256=<base64>` (upper-case label, like Mastodon)."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def content_digest_header(body: bytes) -> str:
    """The RFC 9530 `Content-Digest` value: `sha-256=:<base64>:`."""
    return "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii") + ":"


def http_date(now: datetime) -> str:
    """An IMF-fixdate (`Sun, 05 Jan 2014 21:31:40 GMT`) for a timezone-aware datetime."""
    if now.tzinfo is None:
        raise ValueError("http_date needs a timezone-aware datetime")
    return format_datetime(now.astimezone(UTC), usegmt=True)


def parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        fail("unparsable Date header")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def from_timestamp(value: int) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        fail("timestamp out of range")


def check_window(moment: datetime, now: datetime, max_skew: timedelta) -> None:
    if moment > now + max_skew or moment < now - max_skew:
        fail("date outside the allowed window")


def needs_digest(method: str, body: bytes) -> bool:
    return method in _BODY_METHODS or bool(body)


def split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme, authority, path, query) of an absolute URL; path is "/" when empty."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    authority = parts.netloc.rpartition("@")[2]
    return parts.scheme.lower(), authority, parts.path or "/", parts.query


def split_target(target: str) -> tuple[str, str | None]:
    path, sep, query = target.partition("?")
    return path or "/", (query if sep else None)


def b64decode(value: str, reason: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        fail(reason)


def header_value(fields: Mapping[str, str], name: str) -> str:
    if name not in fields:
        fail(f"signed header missing: {name[:40]}")
    value = fields[name]
    if "\n" in value or "\r" in value:
        fail("malformed header value")
    return value


# --------------------------------------------------------------------------------------------
# Key operations


def sign_bytes(private_key: PrivateKey, data: bytes) -> bytes:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    raise TypeError("only RSA and Ed25519 private keys are supported")


def verify_bytes(public_key: PublicKey, algorithm: str | None, data: bytes, sig: bytes) -> bool:
    """True when `sig` is a valid signature of `data`. Algorithm/key mismatches raise."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if algorithm not in (None, "rsa-sha256", "hs2019", "rsa-v1_5-sha256"):
            fail("algorithm does not match the key")
        try:
            public_key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        if algorithm not in (None, "hs2019", "ed25519"):
            fail("algorithm does not match the key")
        try:
            public_key.verify(sig, data)
        except InvalidSignature:
            return False
        return True
    fail("unsupported key type")
