"""Close webhook signatures (docs/upstream-apis.md, "Close webhook signatures").

`close-sig-hash` = hex HMAC-SHA256 keyed with ``bytes.fromhex(signature_key)`` over the
`close-sig-timestamp` header followed directly by the raw body bytes (no separator).
"""

from __future__ import annotations

import hashlib
import hmac
from enum import StrEnum

# Below this the window is too narrow for clock skew and API Gateway's own latency, and 0
# (no window) would let a captured delivery be replayed once its idempotency records expire.
MIN_TOLERANCE_SECONDS = 60


class SignatureVerdict(StrEnum):
    VALID = "valid"
    MISSING = "missing"
    MALFORMED = "malformed"
    STALE = "stale"
    MISMATCH = "mismatch"


def sign(signature_key_hex: str, timestamp: str, body: bytes) -> str:
    """The `close-sig-hash` Close would send for this timestamp and body."""
    key = bytes.fromhex(signature_key_hex)
    return hmac.new(key, timestamp.encode("ascii") + body, hashlib.sha256).hexdigest()


def verify(
    *,
    signature_key_hex: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance_seconds: int,
) -> SignatureVerdict:
    """Check a delivery's signature and freshness. Constant-time on the digest comparison."""
    if not timestamp or not signature:
        return SignatureVerdict.MISSING
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return SignatureVerdict.MALFORMED
    try:
        expected = sign(signature_key_hex, timestamp, body)
    except ValueError:
        # A misconfigured (non-hex) key can never match; treat it as a mismatch, not a crash.
        return SignatureVerdict.MISMATCH
    if not hmac.compare_digest(expected, signature.strip().lower().encode("ascii", "replace").decode()):
        return SignatureVerdict.MISMATCH
    if abs(now - int(timestamp)) > tolerance_seconds:
        # Checked after the digest, so that a forged timestamp cannot probe the window.
        return SignatureVerdict.STALE
    return SignatureVerdict.VALID
