"""RFC 9421 HTTP Message Signatures: what Mastodon >= 4.5 verifies and Fedify sends first.

Pure: `sign_rfc9421` returns the headers to add; `parse_rfc9421` checks everything that needs
no key (syntax, coverage, Content-Digest, time window, algorithm) and returns the claim that
`httpsig.verify_claim` finishes. Structured fields come from `structured_fields.py`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import rsa

from .signed_request import (
    MAX_SIGNATURE_HEADER,
    HeaderFields,
    HeaderInput,
    PrivateKey,
    SignatureClaim,
    SignedRequestParts,
    check_window,
    content_digest_header,
    fail,
    from_timestamp,
    header_value,
    needs_digest,
    parse_http_date,
    sign_bytes,
    split_target,
    split_url,
)
from .structured_fields import (
    Bare,
    InnerList,
    Item,
    parse_dictionary,
    serialize_bare,
    serialize_inner_list,
)

__all__ = ["parse_rfc9421", "rfc9421_signature_base", "sign_rfc9421"]

_ALGORITHMS = frozenset({"rsa-v1_5-sha256", "ed25519"})


def _parse_dictionary(value: str, reason: str) -> dict[str, Item | InnerList]:
    # Signature-Input, Signature and Content-Digest share the Signature header's size bound.
    return parse_dictionary(value, reason, max_length=MAX_SIGNATURE_HEADER)


def _authority(host: str, scheme: str) -> str:
    host = host.strip().lower()
    default = {"https": ":443", "http": ":80"}.get(scheme)
    if default and host.endswith(default):
        host = host[: -len(default)]
    return host


def _component_value(name: str, parts: SignedRequestParts, scheme: str, host: str | None) -> str:
    path, query = split_target(parts.target)
    if name == "@method":
        return parts.method
    if name in ("@target-uri", "@authority"):
        if host is None:
            fail("Host header missing")
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
        fail(f"unsupported component: {name[:40]}")
    return header_value(parts.headers, name)


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
        fail("signature base is not ASCII")


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
    scheme, authority, path, query = split_url(url)
    target = path + (f"?{query}" if query else "")
    given = HeaderFields(headers)
    added: dict[str, str] = {}
    data = body or b""
    if needs_digest(method, data):
        added["Content-Digest"] = content_digest_header(data)
    pairs = [(k, v) for k, v in given.items() if k != "content-digest"]
    pairs += list(added.items())
    if "host" not in given:
        pairs.append(("host", authority))
    parts = SignedRequestParts(method, target, HeaderFields(pairs), data)
    if covered is None:
        names = ["@method", "@target-uri"] + (["content-digest"] if added else [])
    else:
        names = list(covered)
    if any(name != name.lower() or '"' in name or "\\" in name for name in names):
        raise ValueError("component names must be lower-case and unquoted")
    alg = "rsa-v1_5-sha256" if isinstance(private_key, rsa.RSAPrivateKey) else "ed25519"
    param_list: list[tuple[str, Bare]] = [("created", int(now.timestamp())), ("keyid", key_id)]
    if include_alg:
        param_list.append(("alg", alg))
    inner = InnerList(tuple(Item(name, ()) for name in names), tuple(param_list))
    params = serialize_inner_list(inner)
    base = rfc9421_signature_base(parts, names, params, scheme=scheme)
    signature = sign_bytes(private_key, base)
    added["Signature-Input"] = f"{label}={params}"
    added["Signature"] = f"{label}={serialize_bare(signature)}"
    return added


def parse_rfc9421(
    parts: SignedRequestParts, scheme: str, now: datetime, max_skew: timedelta
) -> SignatureClaim:
    inputs = _parse_dictionary(
        header_value(parts.headers, "signature-input"), "malformed Signature-Input header"
    )
    if "signature" not in parts.headers:
        fail("missing Signature header")
    signatures = _parse_dictionary(
        header_value(parts.headers, "signature"), "malformed Signature header"
    )
    if not inputs:
        fail("malformed Signature-Input header")
    # Several signatures: we check the first one only (documented in
    # https://github.com/fedipress/fedipress/blob/main/docs/signatures.md).
    label, inner = next(iter(inputs.items()))
    if not isinstance(inner, InnerList):
        fail("malformed Signature-Input header")
    sig_item = signatures.get(label)
    if not isinstance(sig_item, Item) or not isinstance(sig_item.value, bytes):
        fail("no Signature for the Signature-Input label")
    covered: list[str] = []
    for item in inner.items:
        if not isinstance(item.value, str) or isinstance(item.value, bool):
            fail("malformed Signature-Input header")
        if item.params:
            fail("component parameters are not supported")
        name = item.value
        if name != name.lower() or name == "@signature-params" or name in covered:
            fail("malformed Signature-Input header")
        covered.append(name)
    params: dict[str, Bare] = dict(inner.params)

    key_id = params.get("keyid")
    if not isinstance(key_id, str) or isinstance(key_id, bool) or not key_id:
        fail("Signature-Input has no keyid")
    alg = params.get("alg")
    if alg is not None and (not isinstance(alg, str) or alg not in _ALGORITHMS):
        fail("unsupported algorithm")
    created = params.get("created")
    if not isinstance(created, int) or isinstance(created, bool):
        fail("Signature-Input has no created")
    moment = from_timestamp(created)
    check_window(moment, now, max_skew)
    expires = params.get("expires")
    if expires is not None:
        if not isinstance(expires, int) or isinstance(expires, bool):
            fail("malformed expires parameter")
        if now > from_timestamp(expires):
            fail("signature expired")

    # Coverage: method and the full target, and the digest of any body (Mastodon 4.5 rules).
    if "@method" not in covered:
        fail("signature must cover @method")
    if "@target-uri" not in covered:
        if "@authority" not in covered or "@path" not in covered:
            fail("signature must cover @target-uri")
        if split_target(parts.target)[1] is not None and "@query" not in covered:
            fail("signature must cover @query")
    if needs_digest(parts.method, parts.body) and "content-digest" not in covered:
        fail("signature must cover content-digest")
    if "content-digest" in covered:
        _check_content_digest(parts)
    if "date" in covered:
        check_window(parse_http_date(header_value(parts.headers, "date")), now, max_skew)

    base = rfc9421_signature_base(parts, covered, serialize_inner_list(inner), scheme=scheme)
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
        header_value(parts.headers, "content-digest"), "malformed Content-Digest header"
    )
    known = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}
    checked = False
    for name, member in digests.items():
        if name not in known:
            continue
        if not isinstance(member, Item) or not isinstance(member.value, bytes):
            fail("malformed Content-Digest header")
        if not hmac.compare_digest(member.value, known[name](parts.body).digest()):
            fail("content-digest does not match body")
        checked = True
    if not checked:
        fail("Content-Digest has no sha-256 or sha-512")
