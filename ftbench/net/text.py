"""What a server's text may do once it is inside ftbench: the key masked out of it, terminal control characters
taken out of it, lone surrogates repaired, and only then shortened.

Order matters: a message cut first and masked second keeps all but the cut-off end of the key (the mask needs
the whole key to match), so `shown` masks, cleans and then cuts.
"""

from __future__ import annotations

import json
import re

# C0/C1 controls (ESC starts terminal escape sequences, NUL ends C strings), DEL, and the bidi overrides that
# reorder what a terminal shows; tab and newline become spaces too: a message is one line
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ESCAPE_SEQUENCE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # CSI: cursor moves, colours (an OSC's text stays visible)
PARTIAL = 8  # a run of this many of the key's characters in a row is masked as well: a server may echo a part


class Redactor:
    """Removes a secret from text before it is printed, logged or written anywhere. Calling it masks the whole
    key; `partial` also masks any run of `PARTIAL` or more of its characters, for text a server wrote (one that
    echoes part of the Authorization header). Only server text gets `partial`: ftbench's own text (paths,
    hashes, the "ftbench-" of its names) may share a run with a key by chance."""

    MASK = "***"

    def __init__(self, secret: str | None):
        self.secret = secret or None

    def __call__(self, text: str) -> str:
        if self.secret and isinstance(text, str):
            return text.replace(self.secret, self.MASK)
        return text

    def partial(self, text: str) -> str:
        secret = self.secret
        if not secret or not isinstance(text, str):
            return text
        text = text.replace(secret, self.MASK)
        window = min(PARTIAL, len(secret))
        hide = [False] * len(text)
        for i in range(len(secret) - window + 1):
            piece, start = secret[i : i + window], 0
            while (found := text.find(piece, start)) >= 0:
                hide[found : found + window] = [True] * window
                start = found + 1
        if not any(hide):
            return text
        out, masking = [], False
        for ch, h in zip(text, hide):
            if h and not masking:
                out.append(self.MASK)
            elif not h:
                out.append(ch)
            masking = h
        return "".join(out)


def repair_surrogates(text: str) -> str:
    """``text`` with every lone surrogate (valid JSON, `"\\ud800"`, but not encodable as UTF-8) replaced by U+FFFD."""
    return _LONE_SURROGATE.sub("\ufffd", text)


def strip_escapes(text: str) -> str:
    """``text`` without terminal control sequences (CSI: cursor moves, colours)."""
    return _ESCAPE_SEQUENCE.sub("", text)


def printable(text: str) -> str:
    """One terminal-safe line: control characters, escape sequences' introducers and bidi overrides become a
    space, lone surrogates U+FFFD."""
    return " ".join(_CONTROL.sub(" ", repair_surrogates(strip_escapes(text))).split())


def shown(text: str, redact: Redactor, limit: int = 300) -> str:
    """Server text as ftbench may show it: masked, made printable, then cut to ``limit`` characters."""
    text = printable(redact.partial(text))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def error_message(raw: bytes, redact: Redactor, limit: int = 300) -> str:
    """The human part of an error body, shown safely: OpenAI's {"error": {"message": ...}}, else the text."""
    text = raw.decode("utf-8", errors="replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            text = err["message"]
        elif isinstance(err, str):
            text = err
        elif isinstance(data.get("message"), str):
            text = data["message"]
    return shown(text, redact, limit)
