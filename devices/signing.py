"""Signed ``EventBatch`` documents: canonical bytes and HMAC-SHA256, shared by edge and hub.

Contract (``signature`` field of ``EventBatch``, DESIGN.md):

* **Canonical bytes** of a batch are its JSON document as received, parsed with Python's
  ``json`` module, with the top-level ``signature`` key removed, serialised again with
  ``json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`` and encoded
  as UTF-8. They are computed from the *parsed document*, never from a validated model, so
  ``1`` and ``1.0`` stay distinct and the signer and the verifier see the same bytes.
* **Signature** is ``"v1:<key_id>:<hex>"`` where ``<hex>`` is the lower-case hex
  HMAC-SHA256 of the canonical bytes under the edge's signing key, and ``<key_id>`` names
  that key (``[A-Za-z0-9_.-]{1,64}``), so the hub can hold two keys of one edge at once
  while it rotates them.
* The canonical bytes cover ``customer_id``, ``edge_id``, ``sent_at`` and every event: a
  signature cannot be moved to another edge, and a resend (new ``sent_at``) has a new one.
* **On the wire** ``sign_payload`` sends the canonical bytes themselves with the signature
  appended as the last member (``…,"signature":"v1:…"}``). A verifier may then MAC the
  bytes before that member directly (``verify_payload``'s fast path, no JSON parsing: a
  match proves the key holder MACed exactly those bytes) and falls back to re-canonicalising
  any other layout, so signers that order or space their JSON differently still verify.

``verify_payload`` raises ``ValidationFailed`` with ``reason`` ``unsigned`` (no signature),
``signature`` (malformed, or a digest that does not match) or ``unknown_key`` (a key id the
verifier does not hold).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import ValidationFailed

__all__ = [
    "KEY_BYTES",
    "KEY_ID_RE",
    "SIGNATURE_VERSION",
    "ParsedSignature",
    "canonical_bytes",
    "new_key",
    "parse_key",
    "parse_signature",
    "sign_document",
    "sign_payload",
    "signature_of",
    "verify_payload",
]

SIGNATURE_VERSION = "v1"
KEY_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
KEY_BYTES = 32
_HEX_RE = re.compile(r"[0-9a-f]{64}")


class ParsedSignature(NamedTuple):
    version: str
    key_id: str
    digest: bytes


def new_key() -> bytes:
    """A fresh random signing key (32 bytes, shown to people as 64 hex characters)."""
    return secrets.token_bytes(KEY_BYTES)


def parse_key(text: str) -> bytes:
    """A signing key from its 64-hex-character form; ``ValueError`` if it is not one."""
    if not isinstance(text, str) or not re.fullmatch(r"[0-9a-fA-F]{64}", text):
        raise ValueError("a signing key is 64 hex characters")
    return bytes.fromhex(text)


def canonical_bytes(doc: Mapping[str, Any]) -> bytes:
    """The bytes a signature covers: ``doc`` without ``signature``, sorted keys, no spaces."""
    body = {k: v for k, v in doc.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def signature_of(canonical: bytes, *, key_id: str, key: bytes) -> str:
    """``"v1:<key_id>:<hex>"`` over already-canonical bytes."""
    if not KEY_ID_RE.fullmatch(key_id):
        raise ValueError(f"key id {key_id!r} must match {KEY_ID_RE.pattern}")
    digest = hmac.new(key, canonical, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}:{key_id}:{digest}"


def sign_document(doc: Mapping[str, Any], *, key_id: str, key: bytes) -> dict[str, Any]:
    """A copy of ``doc`` with its ``signature`` set."""
    return {**doc, "signature": signature_of(canonical_bytes(doc), key_id=key_id, key=key)}


def sign_payload(payload: bytes, *, key_id: str, key: bytes) -> bytes:
    """``payload`` (a JSON object without ``signature``) as canonical bytes plus its signature.

    The result is ``canonical_bytes(doc)`` with ``,"signature":"v1:…"`` inserted before the
    closing brace, the layout ``verify_payload`` checks without parsing.
    """
    doc = json.loads(payload)
    if not isinstance(doc, dict) or "signature" in doc:
        raise ValueError("sign_payload needs a JSON object without a signature")
    body = canonical_bytes(doc)
    sig = signature_of(body, key_id=key_id, key=key)
    sep = b"," if doc else b""
    return body[:-1] + sep + b'"signature":"' + sig.encode() + b'"}'


# The trailing member sign_payload writes; searched for only in the last bytes of a payload.
_TRAILER = re.compile(rb'(,?)"signature":"(v1:[A-Za-z0-9_.-]{1,64}:[0-9a-f]{64})"\}[ \t\r\n]*\Z')
_TRAILER_MAX = 200


def _fast_verify(payload: bytes, keys: Mapping[str, bytes]) -> str | None:
    """The key id if ``payload`` has ``sign_payload``'s layout and its bytes verify; else None."""
    offset = max(0, len(payload) - _TRAILER_MAX)
    m = _TRAILER.search(payload, offset)
    if m is None:
        return None
    sig = m.group(2).decode()
    _, key_id, digest = sig.split(":")
    key = keys.get(key_id)
    if key is None:
        return None
    body = payload[: m.start()] + b"}"
    expected = hmac.new(key, body, hashlib.sha256).digest()
    return key_id if hmac.compare_digest(expected, bytes.fromhex(digest)) else None


def parse_signature(value: object) -> ParsedSignature:
    """Split ``"v1:<key_id>:<hex>"``; ``ValidationFailed(reason="signature")`` if malformed."""
    if not isinstance(value, str):
        raise ValidationFailed("signature must be a string", reason="signature")
    parts = value.split(":")
    if len(parts) != 3 or parts[0] != SIGNATURE_VERSION:
        raise ValidationFailed(f"signature must look like v1:<key_id>:<hex>, not {value[:80]!r}", reason="signature")
    version, key_id, digest = parts
    if not KEY_ID_RE.fullmatch(key_id) or not _HEX_RE.fullmatch(digest):
        raise ValidationFailed(f"malformed signature {value[:80]!r}", reason="signature")
    return ParsedSignature(version, key_id, bytes.fromhex(digest))


def verify_payload(payload: bytes | Mapping[str, Any], *, keys: Mapping[str, bytes]) -> str:
    """Check a batch's signature against ``keys`` (key id → key); the key id that matched.

    ``payload`` is the raw JSON (or the document already parsed from it with ``json``).
    Raises ``ValidationFailed`` with ``reason`` ``unsigned``, ``signature``, ``unknown_key``
    (or ``json`` when the payload is not a JSON object).
    """
    if isinstance(payload, (bytes, bytearray, memoryview)):
        payload = bytes(payload)
        fast = _fast_verify(payload, keys)
        if fast is not None:
            return fast
        try:
            doc = json.loads(payload)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValidationFailed(f"not JSON: {exc}", reason="json") from exc
    else:
        doc = payload
    if not isinstance(doc, Mapping):
        raise ValidationFailed("a batch is a JSON object", reason="json")
    raw = doc.get("signature")
    if raw is None:
        raise ValidationFailed("batch is not signed", reason="unsigned")
    sig = parse_signature(raw)
    key = keys.get(sig.key_id)
    if key is None:
        raise ValidationFailed(f"unknown signing key id {sig.key_id!r}", reason="unknown_key")
    try:
        canonical = canonical_bytes(doc)
    except (UnicodeEncodeError, ValueError, RecursionError) as exc:  # "\\ud800" parses, but has no UTF-8
        raise ValidationFailed(f"document has no canonical bytes: {exc}", reason="signature") from exc
    expected = hmac.new(key, canonical, hashlib.sha256).digest()
    if not hmac.compare_digest(expected, sig.digest):
        raise ValidationFailed(f"signature does not match (key {sig.key_id!r})", reason="signature")
    return sig.key_id
