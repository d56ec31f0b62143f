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
(sig/http.ts); see
https://github.com/fedipress/fedipress/blob/main/docs/signatures.md.

This module is the public facade; the work lives beside it: `signed_request.py` (shared
types, time and key helpers), `cavage.py` (draft-cavage-12), `rfc9421.py` (RFC 9421) and
`structured_fields.py` (the RFC 8941 subset RFC 9421 needs).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from .cavage import cavage_signing_string, parse_cavage, sign_cavage
from .rfc9421 import parse_rfc9421, rfc9421_signature_base, sign_rfc9421
from .signed_request import (
    DEFAULT_MAX_SKEW,
    HeaderInput,
    PrivateKey,
    PublicKey,
    SignatureClaim,
    SignedRequestParts,
    VerifiedSignature,
    content_digest_header,
    digest_header,
    fail,
    header_value,
    http_date,
    verify_bytes,
)

__all__ = [
    "DEFAULT_MAX_SKEW",
    "MIN_RSA_BITS",
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
    "weak_key_reason",
]

# RSA keys shorter than this are refused when verifying: 1024-bit RSA is within reach of a
# well-funded attacker (NIST retired it in 2013), and every fediverse server makes 2048 or more.
MIN_RSA_BITS = 2048


def weak_key_reason(public_key: PublicKey, min_rsa_bits: int = MIN_RSA_BITS) -> str | None:
    """Why `public_key` is too weak to trust a signature from, or None."""
    if isinstance(public_key, rsa.RSAPublicKey) and public_key.key_size < min_rsa_bits:
        return (
            f"signing key is RSA-{public_key.key_size}, too weak"
            f" (at least RSA-{min_rsa_bits} is required)"
        )
    return None


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
        return parse_rfc9421(parts, scheme.lower(), now, max_skew)
    if "signature" in parts.headers:
        return parse_cavage(parts, header_value(parts.headers, "signature"), now, max_skew)
    authorization = parts.headers.get("authorization", "")
    if authorization[:10].lower() == "signature ":
        return parse_cavage(parts, authorization[10:], now, max_skew)
    fail("missing Signature header")


def verify_claim(
    claim: SignatureClaim, public_key: PublicKey, *, min_rsa_bits: int = MIN_RSA_BITS
) -> VerifiedSignature:
    """Verify a claim with the sender's public key; raises SignatureError when it fails,
    and for an RSA key shorter than `min_rsa_bits` whatever it signed (lower it only for
    published test vectors, which use RSA-1024)."""
    weak = weak_key_reason(public_key, min_rsa_bits)
    if weak is not None:
        fail(weak)
    if not any(verify_bytes(public_key, claim.algorithm, b, claim.signature) for b in claim.bases):
        fail("signature does not verify")
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
    min_rsa_bits: int = MIN_RSA_BITS,
) -> VerifiedSignature:
    """`parse_signature_request` then `verify_claim`, for callers that already hold the key."""
    claim = parse_signature_request(
        method, target, headers, body, now=now, max_skew=max_skew, scheme=scheme
    )
    return verify_claim(claim, public_key, min_rsa_bits=min_rsa_bits)
