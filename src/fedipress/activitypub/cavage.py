"""Draft-cavage-12 HTTP Signatures: what Mastodon and most of the fediverse send.

Pure: `sign_cavage` returns the headers to add; `parse_cavage` checks everything that needs
no key (syntax, coverage, digest, time window, algorithm) and returns the claim that
`httpsig.verify_claim` finishes. The policy follows Mastodon (app/lib/signed_request.rb) and
fedify (sig/http.ts); see
https://github.com/fedipress/fedipress/blob/main/docs/signatures.md.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from .signed_request import (
    MAX_SIGNATURE_HEADER,
    HeaderFields,
    HeaderInput,
    PrivateKey,
    SignatureClaim,
    SignedRequestParts,
    b64decode,
    check_window,
    digest_header,
    fail,
    from_timestamp,
    header_value,
    http_date,
    needs_digest,
    parse_http_date,
    sign_bytes,
    split_target,
    split_url,
)

__all__ = ["cavage_signing_string", "parse_cavage", "sign_cavage"]

_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})


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
    fields = headers if isinstance(headers, HeaderFields) else HeaderFields(headers)
    lines = []
    for name in covered:
        if name == "(request-target)":
            value = f"{method.lower()} {target}"
        elif name == "(created)":
            if created is None:
                fail("(created) is signed but the created parameter is missing")
            value = str(created)
        elif name == "(expires)":
            if expires is None:
                fail("(expires) is signed but the expires parameter is missing")
            value = str(expires)
        else:
            value = header_value(fields, name)
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
    scheme, authority, path, query = split_url(url)
    target = path + (f"?{query}" if query and include_query else "")
    given = HeaderFields(headers)
    added: dict[str, str] = {"Date": http_date(now)}
    if "host" not in given:
        added["Host"] = authority
    data = body or b""
    if needs_digest(method, data):
        added["Digest"] = digest_header(data)
    # The Date and Digest generated here replace any stale values the caller passed in.
    merged = HeaderFields(
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
    signature = base64.b64encode(sign_bytes(private_key, signing_string.encode("utf-8")))
    added["Signature"] = (
        f'keyId="{key_id}",algorithm="{algorithm}",headers="{" ".join(names)}",'
        f'signature="{signature.decode("ascii")}"'
    )
    return added


_PARAM = re.compile(r'[ \t]*([A-Za-z]+)[ \t]*=[ \t]*(?:"([^"\\]*)"|([0-9]{1,15}))[ \t]*')


def _parse_cavage_params(value: str) -> dict[str, str]:
    if len(value) > MAX_SIGNATURE_HEADER:
        fail("Signature header too long")
    params: dict[str, str] = {}
    pos = 0
    while True:
        match = _PARAM.match(value, pos)
        if match is None:
            fail("malformed Signature header")
        name = match.group(1).lower()
        if name in params:
            fail("malformed Signature header")
        params[name] = match.group(2) if match.group(2) is not None else match.group(3)
        pos = match.end()
        if pos == len(value):
            return params
        if value[pos] != ",":
            fail("malformed Signature header")
        pos += 1


def _int_param(params: Mapping[str, str], name: str) -> int | None:
    if name not in params:
        return None
    raw = params[name]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 15:
        fail(f"malformed {name} parameter")
    return int(raw)


def parse_cavage(
    parts: SignedRequestParts, value: str, now: datetime, max_skew: timedelta
) -> SignatureClaim:
    params = _parse_cavage_params(value)
    key_id = params.get("keyid", "")
    if not key_id:
        fail("Signature header has no keyId")
    if "signature" not in params:
        fail("Signature header has no signature")
    signature = b64decode(params["signature"], "malformed signature value")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in _ALGORITHMS:
        fail("unsupported algorithm")
    default = "date" if algorithm == "rsa-sha256" else "(created)"
    covered = tuple(params.get("headers", default).lower().split())
    if not covered:
        fail("headers parameter is empty")
    if len(set(covered)) != len(covered):
        fail("headers parameter repeats a header")
    created = _int_param(params, "created")
    expires = _int_param(params, "expires")
    if algorithm != "hs2019" and ("(created)" in covered or "(expires)" in covered):
        fail("(created) and (expires) need algorithm hs2019")

    # Coverage rules (Mastodon, fedify): what a valid request must sign.
    if "date" not in covered and "(created)" not in covered:
        fail("headers must cover date or (created)")
    if "(request-target)" not in covered:
        fail("headers must cover (request-target)")
    if parts.method == "GET" and "host" not in covered:
        fail("headers must cover host")
    if needs_digest(parts.method, parts.body) and "digest" not in covered:
        fail("headers must cover digest")
    if "digest" in covered:
        _check_digest(parts)

    # Time window: every covered time source must be inside it; expires is always enforced.
    moment: datetime | None = None
    if "(created)" in covered:
        if created is None:
            fail("(created) is signed but the created parameter is missing")
        moment = from_timestamp(created)
        check_window(moment, now, max_skew)
    if "date" in covered:
        date = parse_http_date(header_value(parts.headers, "date"))
        check_window(date, now, max_skew)
        moment = moment or date
    if expires is not None and now > from_timestamp(expires):
        fail("signature expired")

    bases = [
        cavage_signing_string(
            parts.method, parts.target, parts.headers, covered, created=created, expires=expires
        )
    ]
    path, query = split_target(parts.target)
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
    raw = header_value(parts.headers, "digest")
    found_sha256 = False
    for entry in raw.split(","):
        name, sep, value = entry.strip().partition("=")
        if not sep:
            fail("malformed Digest header")
        name = name.strip().lower()
        if name == "sha-256":
            algo, size = hashlib.sha256, 32
            found_sha256 = True
        elif name == "sha-512":
            algo, size = hashlib.sha512, 64
        else:
            continue  # unknown algorithms are ignored, as long as SHA-256 is there too
        expected = b64decode(value.strip(), "malformed Digest header")
        if len(expected) != size:
            fail("malformed Digest header")
        if not hmac.compare_digest(expected, algo(parts.body).digest()):
            fail("digest does not match body")
    if not found_sha256:
        fail("Digest header has no SHA-256")
