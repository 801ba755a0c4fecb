"""Text that came from Close or ChartMogul, made safe to keep in errors, log and print.

An API's error body is someone else's text. Kept raw, it can carry terminal escape sequences
(ANSI colours, cursor moves, OSC 8 links, a title change) and control or bidi characters that
rewrite what an operator sees in a terminal or a log viewer, and, echoing our own request, a
key (`signature_key` in a webhook subscription, an `api_key` field). `upstream_text` removes
the first and redacts the second; ApiError applies it to every body it keeps, the CLI to every
line it prints.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), and two-byte ones.
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# C0 (but tab and newline) and C1 controls, DEL, and the bidi overrides and isolates.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# A JSON string member whose name looks like a credential; the value may be cut short.
_KEY_NAME = r"[\w-]*(?:key|secret|token|password|passwd|authorization|credential)s?"
_JSON_MEMBER = re.compile(rf'("{_KEY_NAME}"\s*:\s*)"(?:[^"\\]|\\.)*(?:"|$)', re.IGNORECASE)
# The same in a query string or a "name=value" message.
_ASSIGNMENT = re.compile(rf"(\b{_KEY_NAME}=)[^&\s\"',;]+", re.IGNORECASE)


def strip_controls(text: str) -> str:
    """``text`` without escape sequences and control characters (tabs and newlines stay)."""
    return _CONTROL.sub("", _ESCAPE_SEQUENCE.sub("", text))


def redact_keys(text: str) -> str:
    """``text`` with the value of every key-like field replaced by <redacted>."""
    text = _JSON_MEMBER.sub(rf'\1"{REDACTED}"', text)
    return _ASSIGNMENT.sub(rf"\1{REDACTED}", text)


def upstream_text(text: str) -> str:
    return redact_keys(strip_controls(text))
