"""Per-text checks: unreplaced placeholders, mojibake, invalid Unicode, control characters.

Each check is a precompiled regex behind a cheap prefilter, because validate runs them on every field of
every record (a million records must stay within a few times the JSON parsing time).
"""

from __future__ import annotations

import re

# Names that tutorials' identity sets leave as placeholders; single-brace/angle forms are only flagged with
# one of these names, because `{x}` and `<x>` are legitimate in code and markup data.
PLACEHOLDER_NAMES = (
    "name|author|model_name|model|bot_name|assistant_name|assistant|ai_name|your_name|user_name|username|"
    "company|company_name|organization|org|developer|creator|team|product|product_name|"
    "名字|姓名|名称|作者|模型名称|模型名|公司|公司名称|开发者|助手名称|机器人名称"
)
PLACEHOLDER = re.compile(
    r"\{\{\s*[^{}\n]{1,40}?\s*\}\}"  # {{name}}, {{ author }}: always a template slot
    r"|\$\{(?:" + PLACEHOLDER_NAMES + r")\}"  # ${name}
    r"|\{(?:" + PLACEHOLDER_NAMES + r")\}"  # {name}
    r"|<(?:" + PLACEHOLDER_NAMES + r")>"  # <name>
    r"|\[(?:" + PLACEHOLDER_NAMES + r")\]"  # [name]
    r"|【(?:" + PLACEHOLDER_NAMES + r")】",
    re.IGNORECASE,
)

CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# cp1252/Latin-1 characters that UTF-8 bytes turn into when decoded with the wrong codec ("Ã©", "â€™", "ä½ å¥½")
_CP1252_TAIL = (
    "\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e"
    "\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122"
)
MOJIBAKE_LATIN = re.compile(f"[\u00c2-\u00f4][{_CP1252_TAIL}]+")
SUSPICIOUS = re.compile(
    f"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffd]|锟斤拷|烫烫烫|屯屯屯|[\u00c2-\u00f4][{_CP1252_TAIL}]"
)
_CONTROL_NAMES = {"\x00": "NUL", "\x1b": "ESC", "\x7f": "DEL", "\x0b": "vertical tab", "\x0c": "form feed"}


def find_placeholders(text: str) -> list[str]:
    if "{" not in text and "<" not in text and "[" not in text and "【" not in text:
        return []
    return PLACEHOLDER.findall(text)


def _fix_latin_mojibake(fragment: str) -> str | None:
    """If `fragment` is UTF-8 read as cp1252/Latin-1, the text it should have been; else None."""
    for codec in ("cp1252", "latin-1"):
        try:
            fixed = fragment.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
        if fixed != fragment:
            return fixed
    return None


_CONTROL_BYTES = bytes(c for c in range(32) if c not in (9, 10, 13)) + b"\x7f"


def looks_broken(text: str, raw: bytes | None = None) -> bool:
    """A fast, conservative prefilter for `text_problems`: False means the text is certainly clean.

    Works on the UTF-8 bytes because byte searches run at memchr speed, where a regex over a CJK string
    costs ~25 ns a character: control characters are single bytes, lone surrogates start with 0xED (as do
    some Hangul), and every Latin-1 letter that mojibake starts with (U+00C2-U+00F4) starts with 0xC3, a byte
    that no CJK character contains; U+FFFD and the first characters of 锟斤拷/烫烫烫/屯屯屯 are single-character
    searches of the text.
    """
    if raw is None:  # ``raw``: the text's UTF-8 bytes, when the caller has them already
        raw = text.encode("utf-8", "surrogatepass")
    if len(raw.translate(None, _CONTROL_BYTES)) != len(raw):
        return True
    if len(raw) == len(text):  # pure ASCII
        return False
    # single-character searches of the str: faster than the multi-byte ones (the full check confirms a hit)
    return b"\xc3" in raw or b"\xed" in raw or "\ufffd" in text or "锟" in text or "烫" in text or "屯" in text


def text_problems(text: str) -> list[tuple[str, str, str]]:
    """(code, message, hint) for broken text in one field; empty for clean text (the common, fast case)."""
    if not looks_broken(text) or not SUSPICIOUS.search(text):
        return []
    out = []
    m = CONTROL.search(text)
    if m:
        out.append(_control(text, m))
    surrogate = re.search(r"[\ud800-\udfff]", text)
    if surrogate:
        out.append(
            (
                "invalid-unicode",
                f"lone surrogate U+{ord(surrogate.group()):04X} at character "
                f"{surrogate.start()}: not valid Unicode (often a JSON escape of half an emoji)",
                "the text was cut in the middle of a character; regenerate or fix it",
            )
        )
    if "\ufffd" in text:
        out.append(
            (
                "mojibake",
                f"replacement character U+FFFD at character {text.index(chr(0xFFFD))}: "
                "text was decoded with the wrong encoding upstream",
                "fix the source file's encoding",
            )
        )
    for marker in ("锟斤拷", "烫烫烫", "屯屯屯"):
        if marker in text:
            out.append(
                (
                    "mojibake",
                    f"'{marker}' at character {text.index(marker)}: classic GBK/UTF-8 mix-up",
                    "the original text was lost when converted between encodings; restore it from the source",
                )
            )
            break
    for m in MOJIBAKE_LATIN.finditer(text):
        # widen to the whole run of Latin-1/cp1252 characters and confirm that re-decoding repairs it
        start, end = m.start(), m.end()
        while start > 0 and ("\u0080" <= text[start - 1] <= "\u00ff"):
            start -= 1
        while end < len(text) and ("\u0080" <= text[end] <= "\u00ff" or text[end] in _CP1252_TAIL):
            end += 1
        fixed = _fix_latin_mojibake(text[start:end])
        if fixed:
            out.append(
                (
                    "mojibake",
                    f"{text[start:end]!r} at character {start} looks like UTF-8 read as Latin-1 "
                    f"(should probably be {fixed!r})",
                    "re-read the source as UTF-8",
                )
            )
            break
    return out


def _control(text: str, m: re.Match) -> tuple[str, str, str]:
    ch = m.group()
    name = _CONTROL_NAMES.get(ch, f"U+{ord(ch):04X}")
    return (
        "control-character",
        f"control character {name} at character {m.start()}",
        "strip it: control characters other than newline and tab are invisible and usually copy-paste debris",
    )
