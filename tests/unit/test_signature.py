"""Close webhook signatures against test vectors (docs/upstream-apis.md, "Close webhook signatures")."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tasksync.logic.signature import SignatureVerdict, sign, verify

# Third-party vector (thermondo/closeio tests/djangoapp/test_utils.py), self-consistent.
THERMONDO_KEY = "b9260244ef33625f9b4b26a27db08758cdd39478b852c73f2d33ab042eb8abb4"
THERMONDO_TIMESTAMP = "1557751596"
THERMONDO_BODY = (
    b'{"event": {"id": "ev_4YUAT9G7PQNYEX0V7HpiZa", "date_created": "2019-01-01T13:33:00.842000", '
    b'"data": {"object_type": "activity.note", "action": "created", "note": "test content"}}, '
    b'"subscription_id": "whsub_mBTylJxRXaBOXcuQmgUdmL"}'
)
THERMONDO_HASH = "e6cf27a55de463dc46d8b5c16d2afe74d766e8f0c9892422c93573521cd377ed"

# Synthetic vector: Close's documented example key, computed with the documented construction.
DOCS_KEY = "058bfb6a3d8cfdc4da7c3be5901b16ae11da982b46a25fb2cd7016e97a140a1c"
SYNTHETIC_TIMESTAMP = "1544271440"
SYNTHETIC_BODY = (
    b'{"subscription_id":"whsub_test","event":{"id":"ev_test","object_type":"task.lead",'
    b'"action":"completed","object_id":"task_test","lead_id":"lead_test"}}'
)
SYNTHETIC_HASH = "36e59ebfc26ca4876c8e18320e67a2c14fa9de5642a91c7d8d526465072e9d07"
# The two classic mistakes; a correct implementation must reject both.
ASCII_KEY_HASH = "887ad83ab6d5c4b73c4955460d92464ee30edf29b3a2d3085592eb5305d42b7b"
DOT_SEPARATOR_HASH = "969a90b63ee428a87cdd898be45e7ee67d748dcb0319f4459fa63609d8e84879"


def _verify(key: str, timestamp: str | None, signature: str | None, body: bytes, **kwargs: float) -> SignatureVerdict:
    # By default the clock reads the delivery's own timestamp: fresh.
    sent = int(timestamp) if timestamp and timestamp.isascii() and timestamp.isdigit() else 0
    return verify(
        signature_key_hex=key,
        timestamp=timestamp,
        signature=signature,
        body=body,
        now=float(kwargs.get("now", sent)),
        tolerance_seconds=int(kwargs.get("tolerance", 300)),
    )


@pytest.mark.parametrize(
    ("key", "timestamp", "body", "expected"),
    [
        (THERMONDO_KEY, THERMONDO_TIMESTAMP, THERMONDO_BODY, THERMONDO_HASH),
        (DOCS_KEY, SYNTHETIC_TIMESTAMP, SYNTHETIC_BODY, SYNTHETIC_HASH),
    ],
    ids=["thermondo", "synthetic"],
)
def test_sign_reproduces_the_vector(key: str, timestamp: str, body: bytes, expected: str) -> None:
    assert sign(key, timestamp, body) == expected


@pytest.mark.parametrize(
    ("key", "timestamp", "body", "signature"),
    [
        (THERMONDO_KEY, THERMONDO_TIMESTAMP, THERMONDO_BODY, THERMONDO_HASH),
        (DOCS_KEY, SYNTHETIC_TIMESTAMP, SYNTHETIC_BODY, SYNTHETIC_HASH),
    ],
    ids=["thermondo", "synthetic"],
)
def test_verify_accepts_the_vector(key: str, timestamp: str, body: bytes, signature: str) -> None:
    assert _verify(key, timestamp, signature, body) is SignatureVerdict.VALID


def test_the_must_not_match_hashes_are_the_mistakes_they_claim_to_be() -> None:
    # Recompute the wrong constructions so the rejection tests below test what they say.
    ascii_key = hmac.new(DOCS_KEY.encode(), SYNTHETIC_TIMESTAMP.encode() + SYNTHETIC_BODY, hashlib.sha256)
    dotted = hmac.new(bytes.fromhex(DOCS_KEY), SYNTHETIC_TIMESTAMP.encode() + b"." + SYNTHETIC_BODY, hashlib.sha256)
    assert ascii_key.hexdigest() == ASCII_KEY_HASH
    assert dotted.hexdigest() == DOT_SEPARATOR_HASH


@pytest.mark.parametrize("signature", [ASCII_KEY_HASH, DOT_SEPARATOR_HASH], ids=["ascii_key", "dot_separator"])
def test_verify_rejects_the_must_not_match_variants(signature: str) -> None:
    assert _verify(DOCS_KEY, SYNTHETIC_TIMESTAMP, signature, SYNTHETIC_BODY) is SignatureVerdict.MISMATCH


def test_one_changed_body_byte_breaks_the_signature() -> None:
    tampered = SYNTHETIC_BODY.replace(b"completed", b"completes")
    assert _verify(DOCS_KEY, SYNTHETIC_TIMESTAMP, SYNTHETIC_HASH, tampered) is SignatureVerdict.MISMATCH


def test_another_timestamp_breaks_the_signature() -> None:
    assert _verify(DOCS_KEY, "1544271441", SYNTHETIC_HASH, SYNTHETIC_BODY) is SignatureVerdict.MISMATCH


def test_upper_case_hex_is_the_same_signature() -> None:
    assert _verify(DOCS_KEY, SYNTHETIC_TIMESTAMP, SYNTHETIC_HASH.upper(), SYNTHETIC_BODY) is SignatureVerdict.VALID


@pytest.mark.parametrize(("timestamp", "signature"), [(None, SYNTHETIC_HASH), (SYNTHETIC_TIMESTAMP, None), ("", "")])
def test_missing_headers(timestamp: str | None, signature: str | None) -> None:
    assert _verify(DOCS_KEY, timestamp, signature, SYNTHETIC_BODY) is SignatureVerdict.MISSING


@pytest.mark.parametrize("timestamp", ["-1544271440", "1544271440.0", "１５４４", "9" * 13, " 1544271440"])
def test_malformed_timestamps(timestamp: str) -> None:
    assert _verify(DOCS_KEY, timestamp, SYNTHETIC_HASH, SYNTHETIC_BODY) is SignatureVerdict.MALFORMED


def test_freshness_window_both_ways() -> None:
    sent = int(SYNTHETIC_TIMESTAMP)
    for now, verdict in [
        (sent + 300, SignatureVerdict.VALID),
        (sent - 300, SignatureVerdict.VALID),
        (sent + 301, SignatureVerdict.STALE),
        (sent - 301, SignatureVerdict.STALE),
    ]:
        assert _verify(DOCS_KEY, SYNTHETIC_TIMESTAMP, SYNTHETIC_HASH, SYNTHETIC_BODY, now=now, tolerance=300) is verdict


def test_a_forged_signature_is_a_mismatch_even_when_stale() -> None:
    # The digest is checked first, so a forger cannot learn the window from the answers.
    verdict = _verify(DOCS_KEY, SYNTHETIC_TIMESTAMP, "0" * 64, SYNTHETIC_BODY, now=10**10, tolerance=300)
    assert verdict is SignatureVerdict.MISMATCH


def test_a_key_that_is_not_hex_never_matches() -> None:
    assert _verify("not-hex", SYNTHETIC_TIMESTAMP, SYNTHETIC_HASH, SYNTHETIC_BODY) is SignatureVerdict.MISMATCH


def test_a_non_ascii_signature_is_a_mismatch_not_a_crash() -> None:
    assert _verify(DOCS_KEY, SYNTHETIC_TIMESTAMP, "é" * 64, SYNTHETIC_BODY) is SignatureVerdict.MISMATCH
