"""HTTP Signatures for ActivityPub: draft-cavage-12 (what Mastodon sends) and RFC 9421.

Pure: no clock, no network, no globals. The current time comes in as `now`, keys come in as
`cryptography` key objects, and results are plain data. Signing returns the headers to add;
verification is split in two so the inbox can look the key up between the steps:

    claim = parse_signature_request(method, target, headers, body, now=now)   # no key needed
    key = <fetch or cache lookup of claim.key_id>
    verified = verify_claim(claim, key)

`parse_signature_request` does every check that needs no key (header syntax, required
coverage, digest against the body, time window, allowed algorithm) and builds the exact bytes
that were signed. Every failure raises `SignatureError` whose `reason` is short and safe to
return to the sender. The policy follows Mastodon (app/lib/signed_request.rb) and fedify
(sig/http.ts); see docs/signatures.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
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
    "HeaderInput",
    "PrivateKey",
    "PublicKey",
    "SignatureClaim",
    "SignedRequestParts",
    "VerifiedSignature",
    "cavage_signing_string",
    "content_digest_header",
    "digest_header",
    "http_date",
    "parse_signature_request",
    "rfc9421_signature_base",
    "sign_cavage",
    "sign_rfc9421",
    "verify_claim",
    "verify_request",
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
_MAX_SIGNATURE_HEADER = 8192
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_RFC9421_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "ed25519"})
_DERIVED = frozenset(
    {"@method", "@target-uri", "@authority", "@scheme", "@path", "@query", "@request-target"}
)


# --------------------------------------------------------------------------------------------
# Request data


class _Fields(Mapping[str, str]):
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
        return cls(method.upper(), target, _Fields(headers), body or b"")


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


def _fail(reason: str) -> NoReturn:
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


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        _fail("unparsable Date header")
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _from_timestamp(value: int) -> datetime:
    try:
        return datetime.fromtimestamp(value, tz=UTC)
    except (OverflowError, OSError, ValueError):
        _fail("timestamp out of range")


def _check_window(moment: datetime, now: datetime, max_skew: timedelta) -> None:
    if moment > now + max_skew or moment < now - max_skew:
        _fail("date outside the allowed window")


def _needs_digest(method: str, body: bytes) -> bool:
    return method in _BODY_METHODS or bool(body)


def _split_url(url: str) -> tuple[str, str, str, str]:
    """(scheme, authority, path, query) of an absolute URL; path is "/" when empty."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not an absolute URL: {url!r}")
    authority = parts.netloc.rpartition("@")[2]
    return parts.scheme.lower(), authority, parts.path or "/", parts.query


def _split_target(target: str) -> tuple[str, str | None]:
    path, sep, query = target.partition("?")
    return path or "/", (query if sep else None)


def _b64decode(value: str, reason: str) -> bytes:
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        _fail(reason)


def _header_value(fields: Mapping[str, str], name: str) -> str:
    if name not in fields:
        _fail(f"signed header missing: {name[:40]}")
    value = fields[name]
    if "\n" in value or "\r" in value:
        _fail("malformed header value")
    return value


# --------------------------------------------------------------------------------------------
# Key operations


def _sign_bytes(private_key: PrivateKey, data: bytes) -> bytes:
    if isinstance(private_key, rsa.RSAPrivateKey):
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return private_key.sign(data)
    raise TypeError("only RSA and Ed25519 private keys are supported")


def _verify_bytes(public_key: PublicKey, algorithm: str | None, data: bytes, sig: bytes) -> bool:
    """True when `sig` is a valid signature of `data`. Algorithm/key mismatches raise."""
    if isinstance(public_key, rsa.RSAPublicKey):
        if algorithm not in (None, "rsa-sha256", "hs2019", "rsa-v1_5-sha256"):
            _fail("algorithm does not match the key")
        try:
            public_key.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return False
        return True
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        if algorithm not in (None, "hs2019", "ed25519"):
            _fail("algorithm does not match the key")
        try:
            public_key.verify(sig, data)
        except InvalidSignature:
            return False
        return True
    _fail("unsupported key type")


# --------------------------------------------------------------------------------------------
# Draft-cavage-12


def cavage_signing_string(
    method: str,
    target: str,
    headers: HeaderInput | Mapping[str, str],
    covered: Iterable[str],
    *,
    created: int | None = None,
    expires: int | None = None,
) -> str:
    """The draft-cavage signing string: one `name: value` line per covered header."""
    fields = headers if isinstance(headers, _Fields) else _Fields(headers)
    lines = []
    for name in covered:
        if name == "(request-target)":
            value = f"{method.lower()} {target}"
        elif name == "(created)":
            if created is None:
                _fail("(created) is signed but the created parameter is missing")
            value = str(created)
        elif name == "(expires)":
            if expires is None:
                _fail("(expires) is signed but the expires parameter is missing")
            value = str(expires)
        else:
            value = _header_value(fields, name)
        lines.append(f"{name}: {value}")
    return "\n".join(lines)


def sign_cavage(
    method: str,
    url: str,
    headers: HeaderInput,
    body: bytes | None,
    *,
    key_id: str,
    private_key: PrivateKey,
    now: datetime,
    covered: Iterable[str] | None = None,
    algorithm: str | None = None,
    include_query: bool = False,
) -> dict[str, str]:
    """Headers to add so that the request carries a draft-cavage signature.

    Returns `Date` (from `now`), `Host` (only when `headers` has none), `Digest` (requests with
    a body) and `Signature`. POST covers `(request-target) host date digest` plus
    `content-type` when present; GET covers `(request-target) host date`. `algorithm` defaults
    to `rsa-sha256` for RSA keys (what Mastodon sends) and `hs2019` for Ed25519 keys.

    `(request-target)` leaves the query string out unless `include_query`: that is what
    Mastodon and Fedify send, Fedify verifies only that form, and Mastodon and GoToSocial
    accept it (they try with and without the query).
    """
    method = method.upper()
    scheme, authority, path, query = _split_url(url)
    target = path + (f"?{query}" if query and include_query else "")
    given = _Fields(headers)
    added: dict[str, str] = {"Date": http_date(now)}
    if "host" not in given:
        added["Host"] = authority
    data = body or b""
    if _needs_digest(method, data):
        added["Digest"] = digest_header(data)
    # The Date and Digest generated here replace any stale values the caller passed in.
    merged = _Fields(
        [*((k, v) for k, v in given.items() if k not in ("date", "digest")), *added.items()]
    )
    if covered is None:
        names = ["(request-target)", "host", "date"]
        if "Digest" in added:
            names.append("digest")
            if "content-type" in merged:
                names.append("content-type")
    else:
        names = [name.lower() for name in covered]
    if algorithm is None:
        algorithm = "rsa-sha256" if isinstance(private_key, rsa.RSAPrivateKey) else "hs2019"
    signing_string = cavage_signing_string(method, target, merged, names)
    signature = base64.b64encode(_sign_bytes(private_key, signing_string.encode("utf-8")))
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{algorithm}",headers="{" ".join(names)}",'
        f'signature="{signature.decode("ascii")}"'
    )
    return added


_CAVAGE_PARAM = re.compile(r'[ \t]*([A-Za-z]+)[ \t]*=[ \t]*(?:"([^"\\]*)"|([0-9]{1,15}))[ \t]*')


def _parse_cavage_params(value: str) -> dict[str, str]:
    if len(value) > _MAX_SIGNATURE_HEADER:
        _fail("Signature header too long")
    params: dict[str, str] = {}
    pos = 0
    while True:
        match = _CAVAGE_PARAM.match(value, pos)
        if match is None:
            _fail("malformed Signature header")
        name = match.group(1).lower()
        if name in params:
            _fail("malformed Signature header")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
        if pos == len(value):
            return params
        if value[pos] != ",":
            _fail("malformed Signature header")
        pos += 1


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    if name not in params:
        return None
    raw = params[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
        _fail(f"malformed {name} parameter")
    return int(raw)


def _parse_cavage(
    parts: SignedRequestParts, value: str, now: datetime, max_skew: timedelta
) -> SignatureClaim:
    params = _parse_cavage_params(value)
    key_id = params.get("keyid", "")
    if not key_id:
        _fail("Signature header has no keyId")
    if "signature" not in params:
        _fail("Signature header has no signature")
    signature = _b64decode(params["signature"], "malformed signature value")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in _CAVAGE_ALGORITHMS:
        _fail("unsupported algorithm")
    default = "date" if algorithm == "rsa-sha256" else "(created)"
    covered = tuple(params.get("headers", default).lower().split())
    if not covered:
        _fail("headers parameter is empty")
    if len(set(covered)) != len(covered):
        _fail("headers parameter repeats a header")
    created = _int_param(params, "created")
    expires = _int_param(params, "expires")
    if algorithm != "hs2019" and ("(created)" in covered or "(expires)" in covered):
        _fail("(created) and (expires) need algorithm hs2019")

    # Coverage rules (Mastodon, fedify): what a valid request must sign.
    if "date" not in covered and "(created)" not in covered:
        _fail("headers must cover date or (created)")
    if "(request-target)" not in covered:
        _fail("headers must cover (request-target)")
    if parts.method == "GET" and "host" not in covered:
        _fail("headers must cover host")
    if _needs_digest(parts.method, parts.body) and "digest" not in covered:
        _fail("headers must cover digest")
    if "digest" in covered:
        _check_digest(parts)

    # Time window: every covered time source must be inside it; expires is always enforced.
    moment: datetime | None = None
    if "(created)" in covered:
        if created is None:
            _fail("(created) is signed but the created parameter is missing")
        moment = _from_timestamp(created)
        _check_window(moment, now, max_skew)
    if "date" in covered:
        date = _parse_http_date(_header_value(parts.headers, "date"))
        _check_window(date, now, max_skew)
        moment = moment or date
    if expires is not None and now > _from_timestamp(expires):
        _fail("signature expired")

    bases = [
        cavage_signing_string(
            parts.method, parts.target, parts.headers, covered, created=created, expires=expires
        )
    ]
    path, query = _split_target(parts.target)
    if query is not None and "(request-target)" in covered:
        bases.append(
            cavage_signing_string(
                parts.method, path, parts.headers, covered, created=created, expires=expires
            )
        )
    return SignatureClaim(
        key_id=key_id,
        scheme="cavage",
        algorithm=algorithm,
        covered=covered,
        created=moment,
        bases=tuple(base.encode("utf-8") for base in bases),
        signature=signature,
    )


def _check_digest(parts: SignedRequestParts) -> None:
    """`Digest: alg=value, …` must hold a SHA-256 of the body; every known one must match."""
    raw = _header_value(parts.headers, "digest")
    found_sha256 = False
    for entry in raw.split(","):
        name, sep, value = entry.strip().partition("=")
        if not sep:
            _fail("malformed Digest header")
        name = name.strip().lower()
        if name == "sha-256":
            algo, size = hashlib.sha256, 32
            found_sha256 = True
        elif name == "sha-512":
            algo, size = hashlib.sha512, 64
        else:
            continue  # unknown algorithms are ignored, as long as SHA-256 is there too
        expected = _b64decode(value.strip(), "malformed Digest header")
        if len(expected) != size:
            _fail("malformed Digest header")
        if not hmac.compare_digest(expected, algo(parts.body).digest()):
            _fail("digest does not match body")
    if not found_sha256:
        _fail("Digest header has no SHA-256")


# --------------------------------------------------------------------------------------------
# Structured field values (RFC 8941): the subset RFC 9421 needs, strict.


@dataclass(frozen=True)
class _Token:
    value: str


_Bare: TypeAlias = int | bool | str | bytes | _Token


@dataclass(frozen=True)
class _Item:
    value: _Bare
    params: tuple[tuple[str, _Bare], ...]


@dataclass(frozen=True)
class _InnerList:
    items: tuple[_Item, ...]
    params: tuple[tuple[str, _Bare], ...]


class _SFParser:
    """Recursive-descent parser; any syntax error raises SignatureError(reason)."""

    _KEY_FIRST = frozenset("abcdefghijklmnopqrstuvwxyz*")
    _KEY_REST = _KEY_FIRST | frozenset("0123456789_-.")
    _TCHAR = frozenset(
        "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ:/"
    )
    _B64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")

    def __init__(self, text: str, reason: str) -> None:
        self.s = text
        self.i = 0
        self.reason = reason

    def fail(self) -> NoReturn:
        _fail(self.reason)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def dictionary(self) -> dict[str, _Item | _InnerList]:
        if len(self.s) > _MAX_SIGNATURE_HEADER:
            self.fail()
        result: dict[str, _Item | _InnerList] = {}
        self.skip(" ")
        while self.i < len(self.s):
            key = self.key()
            member: _Item | _InnerList
            if self.peek() == "=":
                self.i += 1
                member = self.inner_list() if self.peek() == "(" else self.item()
            else:
                member = _Item(True, self.params())
            if key in result:  # RFC 8941 would overwrite; a repeated label is suspicious
                self.fail()
            result[key] = member
            self.skip(" \t")
            if self.i == len(self.s):
                break
            if self.peek() != ",":
                self.fail()
            self.i += 1
            self.skip(" \t")
            if self.i == len(self.s):
                self.fail()
        return result

    def skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def key(self) -> str:
        start = self.i
        if self.peek() == "" or self.peek() not in self._KEY_FIRST:
            self.fail()
        self.i += 1
        while self.peek() != "" and self.peek() in self._KEY_REST:
            self.i += 1
        return self.s[start : self.i]

    def inner_list(self) -> _InnerList:
        self.i += 1  # "("
        items: list[_Item] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.i += 1
                return _InnerList(tuple(items), self.params())
            items.append(self.item())
            if self.peek() not in (" ", ")"):
                self.fail()

    def item(self) -> _Item:
        return _Item(self.bare(), self.params())

    def params(self) -> tuple[tuple[str, _Bare], ...]:
        found: dict[str, _Bare] = {}
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            key = self.key()
            value: _Bare = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare()
            if key in found:
                self.fail()
            found[key] = value
        return tuple(found.items())

    def bare(self) -> _Bare:
        c = self.peek()
        if c == "-" or ("0" <= c <= "9" and c != ""):
            return self.integer()
        if c == '"':
            return self.string()
        if c == ":":
            return self.byte_sequence()
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                self.fail()
            self.i += 2
            return flag == "1"
        if c != "" and (c == "*" or (c.isascii() and c.isalpha())):
            start = self.i
            self.i += 1
            while self.peek() != "" and self.peek() in self._TCHAR:
                self.i += 1
            return _Token(self.s[start : self.i])
        self.fail()

    def integer(self) -> int:
        start = self.i
        if self.peek() == "-":
            self.i += 1
        digits = self.i
        while self.peek() != "" and "0" <= self.peek() <= "9":
            self.i += 1
        if self.i == digits or self.i - digits > 15 or self.peek() == ".":
            self.fail()  # no digits, too long, or a decimal (never used by signatures)
        return int(self.s[start : self.i])

    def string(self) -> str:
        self.i += 1
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.peek()
                if nxt not in ('"', "\\") or nxt == "":
                    self.fail()
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not (" " <= c <= "~"):
                self.fail()
            else:
                out.append(c)
        self.fail()

    def byte_sequence(self) -> bytes:
        end = self.s.find(":", self.i + 1)
        if end < 0:
            self.fail()
        chunk = self.s[self.i + 1 : end]
        if any(ch not in self._B64 for ch in chunk):
            self.fail()
        self.i = end + 1
        try:
            return base64.b64decode(chunk, validate=True)
        except (binascii.Error, ValueError):
            self.fail()


def _parse_dictionary(value: str, reason: str) -> dict[str, _Item | _InnerList]:
    return _SFParser(value, reason).dictionary()


def _serialize_bare(value: _Bare) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, _Token):
        return value.value
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _serialize_params(params: Iterable[tuple[str, _Bare]]) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={_serialize_bare(value)}" for key, value in params
    )


def _serialize_inner_list(inner: _InnerList) -> str:
    items = " ".join(_serialize_bare(i.value) + _serialize_params(i.params) for i in inner.items)
    return f"({items}){_serialize_params(inner.params)}"


# --------------------------------------------------------------------------------------------
# RFC 9421


def _authority(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = {"https": ":443", "http": ":80"}.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    return host


def _component_value(name: str, parts: SignedRequestParts, scheme: str, host: str | None) -> str:
    path, query = _split_target(parts.target)
    if name == "@method":
        return parts.method
    if name in ("@target-uri", "@authority"):
        if host is None:
            _fail("Host header missing")
        if name == "@authority":
            return _authority(host, scheme)
        return f"{scheme}://{host.strip()}{parts.target}"
    if name == "@scheme":
        return scheme
    if name == "@path":
        return path
    if name == "@query":
        return "?" + (query or "")
    if name == "@request-target":
        return parts.target
    if name.startswith("@"):
        _fail(f"unsupported component: {name[:40]}")
    return _header_value(parts.headers, name)


def rfc9421_signature_base(
    parts: SignedRequestParts, components: Iterable[str], params: str, *, scheme: str = "https"
) -> bytes:
    """The RFC 9421 §2.5 signature base for `components`; `params` is the serialised
    `@signature-params` value (`("@method" …);created=…;keyid="…"`)."""
    host = parts.headers.get("host")
    lines = []
    for name in components:
        value = _component_value(name, parts, scheme, host)
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {params}')
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        _fail("signature base is not ASCII")


def sign_rfc9421(
    method: str,
    url: str,
    headers: HeaderInput,
    body: bytes | None,
    *,
    key_id: str,
    private_key: PrivateKey,
    now: datetime,
    label: str = "sig1",
    covered: Iterable[str] | None = None,
    include_alg: bool = True,
) -> dict[str, str]:
    """Headers to add for an RFC 9421 signature: `Content-Digest` (requests with a body),
    `Signature-Input` and `Signature`. POST covers `"@method" "@target-uri" "content-digest"`,
    GET `"@method" "@target-uri"`; parameters are created, keyid and alg."""
    method = method.upper()
    scheme, authority, path, query = _split_url(url)
    target = path + (f"?{query}" if query else "")
    given = _Fields(headers)
    added: dict[str, str] = {}
    data = body or b""
    if _needs_digest(method, data):
        added["Content-Digest"] = content_digest_header(data)
    pairs = [(k, v) for k, v in given.items() if k != "content-digest"]
    pairs += list(added.items())
    if "host" not in given:
        pairs.append(("host", authority))
    parts = SignedRequestParts(method, target, _Fields(pairs), data)
    if covered is None:
        names = ["@method", "@target-uri"] + (["content-digest"] if added else [])
    else:
        names = list(covered)
    if any(name != name.lower() or '"' in name or "\\" in name for name in names):
        raise ValueError("component names must be lower-case and unquoted")
    alg = "rsa-v1_5-sha256" if isinstance(private_key, rsa.RSAPrivateKey) else "ed25519"
    param_list: list[tuple[str, _Bare]] = [("created", int(now.timestamp())), ("keyid", key_id)]
    if include_alg:
        param_list.append(("alg", alg))
    inner = _InnerList(tuple(_Item(name, ()) for name in names), tuple(param_list))
    params = _serialize_inner_list(inner)
    base = rfc9421_signature_base(parts, names, params, scheme=scheme)
    signature = _sign_bytes(private_key, base)
    added["Signature-Input"] = f"{label}={params}"
    added["Signature"] = f"{label}={_serialize_bare(signature)}"
    return added


def _param_dict(params: tuple[tuple[str, _Bare], ...]) -> dict[str, _Bare]:
    return dict(params)


def _parse_rfc9421(
    parts: SignedRequestParts, scheme: str, now: datetime, max_skew: timedelta
) -> SignatureClaim:
    inputs = _parse_dictionary(
        _header_value(parts.headers, "signature-input"), "malformed Signature-Input header"
    )
    if "signature" not in parts.headers:
        _fail("missing Signature header")
    signatures = _parse_dictionary(
        _header_value(parts.headers, "signature"), "malformed Signature header"
    )
    if not inputs:
        _fail("malformed Signature-Input header")
    # Several signatures: we check the first one only (documented in docs/signatures.md).
    label, inner = next(iter(inputs.items()))
    if not isinstance(inner, _InnerList):
        _fail("malformed Signature-Input header")
    sig_item = signatures.get(label)
    if not isinstance(sig_item, _Item) or not isinstance(sig_item.value, bytes):
        _fail("no Signature for the Signature-Input label")
    covered: list[str] = []
    for item in inner.items:
        if not isinstance(item.value, str) or isinstance(item.value, bool):
            _fail("malformed Signature-Input header")
        if item.params:
            _fail("component parameters are not supported")
        name = item.value
        if name != name.lower() or name == "@signature-params" or name in covered:
            _fail("malformed Signature-Input header")
        covered.append(name)
    params = _param_dict(inner.params)

    key_id = params.get("keyid")
    if not isinstance(key_id, str) or isinstance(key_id, bool) or not key_id:
        _fail("Signature-Input has no keyid")
    alg = params.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in _RFC9421_ALGORITHMS):
        _fail("unsupported algorithm")
    created = params.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        _fail("Signature-Input has no created")
    moment = _from_timestamp(created)
    _check_window(moment, now, max_skew)
    expires = params.get("expires")
    if expires is not None:
        if not isinstance(expires, int) or isinstance(expires, bool):
            _fail("malformed expires parameter")
        if now > _from_timestamp(expires):
            _fail("signature expired")

    # Coverage: method and the full target, and the digest of any body (Mastodon 4.5 rules).
    if "@method" not in covered:
        _fail("signature must cover @method")
    if "@target-uri" not in covered:
        if "@authority" not in covered or "@path" not in covered:
            _fail("signature must cover @target-uri")
        if _split_target(parts.target)[1] is not None and "@query" not in covered:
            _fail("signature must cover @query")
    if _needs_digest(parts.method, parts.body) and "content-digest" not in covered:
        _fail("signature must cover content-digest")
    if "content-digest" in covered:
        _check_content_digest(parts)
    if "date" in covered:
        _check_window(_parse_http_date(_header_value(parts.headers, "date")), now, max_skew)

    base = rfc9421_signature_base(parts, covered, _serialize_inner_list(inner), scheme=scheme)
    return SignatureClaim(
        key_id=key_id,
        scheme="rfc9421",
        algorithm=alg,
        covered=tuple(covered),
        created=moment,
        bases=(base,),
        signature=sig_item.value,
    )


def _check_content_digest(parts: SignedRequestParts) -> None:
    digests = _parse_dictionary(
        _header_value(parts.headers, "content-digest"), "malformed Content-Digest header"
    )
    known = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = False
    for name, member in digests.items():
        if name not in known:
            continue
        if not isinstance(member, _Item) or not isinstance(member.value, bytes):
            _fail("malformed Content-Digest header")
        if not hmac.compare_digest(member.value, known[name](parts.body).digest()):
            _fail("content-digest does not match body")
        checked = True
    if not checked:
        _fail("Content-Digest has no sha-256 or sha-512")


# --------------------------------------------------------------------------------------------
# Entry points


def parse_signature_request(
    method: str,
    target: str,
    headers: HeaderInput,
    body: bytes | None,
    *,
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    scheme: str = "https",
) -> SignatureClaim:
    """Check everything that needs no key and return the claim to verify.

    `target` is the request target as received (`/inbox?x=1`, raw, not percent-decoded).
    `scheme` is the public scheme of the inbox URL (RFC 9421 `@target-uri`, `@scheme`).
    A request with `Signature-Input` is read as RFC 9421, otherwise as draft-cavage
    (`Signature`, or `Authorization: Signature …`).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    parts = SignedRequestParts.of(method, target, headers, body)
    if "signature-input" in parts.headers:
        return _parse_rfc9421(parts, scheme.lower(), now, max_skew)
    if "signature" in parts.headers:
        return _parse_cavage(parts, _header_value(parts.headers, "signature"), now, max_skew)
    authorization = parts.headers.get("authorization", "")
    if authorization[:10].lower() == "signature ":
        return _parse_cavage(parts, authorization[10:], now, max_skew)
    _fail("missing Signature header")


def verify_claim(claim: SignatureClaim, public_key: PublicKey) -> VerifiedSignature:
    """Verify a claim with the sender's public key; raises SignatureError when it fails."""
    if not any(_verify_bytes(public_key, claim.algorithm, b, claim.signature) for b in claim.bases):
        _fail("signature does not verify")
    return VerifiedSignature(claim.key_id, claim.scheme, claim.covered, claim.created)


def verify_request(
    method: str,
    target: str,
    headers: HeaderInput,
    body: bytes | None,
    *,
    public_key: PublicKey,
    now: datetime,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    scheme: str = "https",
) -> VerifiedSignature:
    """`parse_signature_request` then `verify_claim`, for callers that already hold the key."""
    claim = parse_signature_request(
        method, target, headers, body, now=now, max_skew=max_skew, scheme=scheme
    )
    return verify_claim(claim, public_key)
