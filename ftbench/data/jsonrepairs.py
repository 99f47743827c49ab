"""The catalogue of JSON syntax mistakes `jsonsyntax.diagnose_json` recognises: for each, how it is found
from the characters around the parser's error position, the message, the hint that names the fix, and the
repair (edits to the working copy) that lets parsing go on.

Every diagnosis function returns a `Diagnosis`; ``ctx`` is the caller's `jsonsyntax._Context` (it turns
working-copy positions into `line:column` of the original text).
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

WS = " \t\n\r"  # JSON's whitespace; anything else between tokens is an error
FULLWIDTH = {
    "，": ",",
    "：": ":",
    "“": '"',
    "”": '"',
    "‘": '"',
    "’": '"',
    "＂": '"',
    "｛": "{",
    "｝": "}",
    "［": "[",
    "］": "]",
    "【": "[",
    "】": "]",
    "\u3000": " ",
}
INVISIBLE = {
    "\ufeff": "byte order mark (U+FEFF)",
    "\u200b": "zero-width space (U+200B)",
    "\u00a0": "no-break space (U+00A0)",
}
CONTROL_NAMES = {
    "\n": "a raw newline (U+000A)",
    "\r": "a raw carriage return (U+000D)",
    "\t": "a raw tab (U+0009)",
    "\r\n": "a raw line break (CR LF)",
}
ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
KIND = {"[": "array", "{": "object"}
# codes that repeat along one line (a printed Python dict, full-width typing) are reported once per line
GROUPED = {
    "single-quotes",
    "python-literal",
    "fullwidth-punctuation",
    "invalid-escape",
    "unquoted-string",
    "invisible-character",
    "nan-infinity",
}

SPACES = re.compile(r"[ \t\n\r]*")
NUMBER_CHARS = frozenset("+-.0123456789abcdefABCDEFxX")
CONTROL = re.compile(r"[\x00-\x1f]")
STRING_TAIL = re.compile(r'(?:[^"\\]|\\.)*"', re.S)  # the rest of a string, raw control characters allowed
SCAN = re.compile(r'"(?:[^"\\]|\\.)*("?)|[\[\]{}]', re.S)  # strings and brackets, to see what is still open
STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.S)
CONSTANT = re.compile(r"[-+]?(?:NaN|nan|Infinity|infinity|inf|Inf)(?!\w)")
PY_LITERAL = re.compile(r"(?:True|False|None)(?!\w)")
SINGLE_QUOTED = re.compile(r"'((?:[^'\\\n]|\\.)*)'")
PY_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|.)|"')
VALUE_START = re.compile(r'["{\[\-0-9]|(?:true|false|null)(?!\w)')
BARE_KEY = re.compile(r'[^\s"\':：,，{}\[\]]+')
BARE_VALUE = re.compile(r'[^\s"\',，:{}\[\]][^"\n,，:{}\[\]]*')
MISTYPED_CLOSER = re.compile(r"[”’](?=[ \t]*[:：,，}\]])")
NEXT_MEMBER = re.compile(r'[ \t]*(?:"[^"\n]*"[ \t]*[:：]|[}\]{])')
QUOTE_OR_NEWLINE = re.compile(r'["“”‘’＂\n]')
KEY_AHEAD = re.compile(r'[^"\n]*"[ \t]*[:：]')
_KEY_BEFORE = re.compile(r'"((?:[^"\\\n]|\\.)*)"[ \t\r\n]*:[ \t\r\n]*$')  # the key whose value starts here
# the quote that really ends a string: followed by ':' or a closer, by ',' and a new item, or by the line end
REAL_CLOSER = re.compile(r'(?<!\\)"(?=[ \t]*(?:[:}\]]|,[ \t]*(?:["{\[\r\n]|$)|[\r\n]|$))')

HINTS = {
    "trailing-comma": "Delete this comma: JSON allows no comma after the last item of an array or object.",
    "extra-comma": "Delete this extra comma.",
    "missing-comma": "Add a ',' here: items of an array and members of an object are separated by commas.",
    "missing-colon": "Add a ':' here, between the key and its value.",
    "missing-value": 'Write a value here; use "" or null for an empty one.',
    "single-quotes": "JSON strings need double quotes. This looks like a Python dict printed with print() or "
    "str(); write the file with json.dump(obj, f, ensure_ascii=False) instead.",
    "python-literal": "Write true / false / null: True / False / None come from print() or str() of a Python "
    "dict; write the file with json.dump instead.",
    "fullwidth-punctuation": "Type JSON syntax with ASCII (half-width) punctuation: switch the input method to "
    "English punctuation. Full-width punctuation inside strings is fine.",
    "control-character-in-string": "Write \\n for a line break and \\t for a tab inside a string (json.dump does).",
    "unterminated-string": 'Add the closing " of the string here.',
    "json-comment": "JSON has no comments: delete it, or keep the note in a separate field or file.",
    "nan-infinity": "NaN and Infinity are not JSON (json.dump writes them unless allow_nan=False); use null.",
    "truncated-json": "The text looks cut off (an interrupted download, copy or write): restore the complete "
    "file, or close what is still open.",
    "unescaped-quote": 'Write a double quote inside a string as \\" (not "" as in CSV), or use “” or 「」.',
    "invalid-escape": 'JSON knows only \\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX: write a backslash twice '
    "(a Windows path as C:\\\\Users\\\\me), and \\' as a plain '.",
    "unquoted-string": 'Put the text in double quotes, e.g. "instruction" or "你好".',
    "invisible-character": "Delete it; it comes from copying out of a web page or Word, or from joined files.",
    "unclosed-bracket": "Add the missing closing bracket here.",
    "mismatched-bracket": "Make the brackets match: every [ closes with ] and every { with }.",
    "extra-data": "A JSON text holds exactly one value; delete what follows it.",
    "invalid-number": "Write numbers the JSON way: no leading zeros, + signs, hex, or bare '.5' / '5.'.",
    "empty-json": "Write a JSON value (for a dataset, a [ ] list of records).",
    "braces-for-list": "Write a list with square brackets: replace this '{' and its closing '}' with '[' and ']', "
    'as in "conversations": [ {...}, {...} ].',
    "nesting-too-deep": "Flatten the data: records of chat data are a few levels deep. A deeply nested value is "
    "usually generated by mistake (an object wrapped in itself); store it as a string if needed.",
    "number-too-long": 'Write it as a string ("1234...") if it is an identifier; no model input needs a number '
    "this long.",
    "invalid-json": "Correct the JSON at this position so that what the parser expected (in the message) is there; "
    "compare with a record that loads.",
}


class Diagnosis(NamedTuple):
    """One problem in the working copy: where, what, and the edits (start, end, new) repairing it (None: stop)."""

    code: str
    pos: int
    message: str
    edits: list[tuple[int, int, str]] | None
    detail: str = ""  # listed in the merged message when the same code repeats on a line
    hint: str = ""  # the fix for this very case, when it says more than the code's hint in HINTS


def no_value(work: str, msg: str, pos: int, prev: int) -> Diagnosis | None:
    """The parser wanted a value or a key at `pos` (after '[', '{', ',' or ':') and found something else."""
    char, before = work[pos], work[prev] if prev >= 0 else " "
    if char in "]}" and before == ",":
        return Diagnosis(
            "trailing-comma", prev, f"a comma after the last item, before '{char}'", [(prev, prev + 1, " ")]
        )
    if char == "," and before in ",[{":
        return Diagnosis("extra-comma", pos, "an extra comma with no item before it", [(pos, pos + 1, " ")])
    if char in ",}" and before == ":":
        return Diagnosis("missing-value", pos, "a value is missing after ':'", [(pos, pos, "null")])
    key = msg.startswith("Expecting property name")
    if not key and (char in "+." or char.isdigit()):
        return invalid_number(work, pos)
    bare = (BARE_KEY if key else BARE_VALUE).match(work, pos)
    if not bare:
        return None
    word = bare.group().rstrip()
    quoted = json.dumps(word, ensure_ascii=False)
    return Diagnosis(
        "unquoted-string",
        pos,
        f"{'key' if key else 'text'} without double quotes: {word[:30]}",
        [(pos, pos + len(word), quoted)],
        hint=f"Put it in double quotes: {quoted[:60]}." if len(quoted) <= 60 else "",
    )


def invalid_number(work: str, pos: int) -> Diagnosis:
    """A number JSON does not accept (01, +5, .5, 5., 0x1F): the hint gives the JSON way to write it."""
    start = pos
    while start > 0 and work[start - 1] in NUMBER_CHARS:
        start -= 1
    end = pos
    while end < len(work) and work[end] in NUMBER_CHARS:
        end += 1
    token, fixed = work[start:end], None
    try:
        value = int(token, 16) if token.lower().lstrip("+-").startswith("0x") else float(token)
        fixed = json.dumps(
            int(value) if float(value).is_integer() and "." not in token and "e" not in token.lower() else value
        )
    except (ValueError, OverflowError):
        pass
    return Diagnosis(
        "invalid-number",
        pos,
        "this number is not written the JSON way",
        None,
        hint=f"Write it as {fixed} (not {token})." if fixed and fixed != token else "",
    )


def no_delimiter(work: str, msg: str, pos: int, prev: int, ctx) -> Diagnosis:
    """The parser wanted ',' (or ':') after the value (or key) ending at `prev` and found something else."""
    char, before, comma = work[pos], work[prev], msg.startswith("Expecting ','")
    if before == '"' and (char not in ':,[]{}"' and not VALUE_START.match(work, pos) or work[prev : pos + 1] == '""'):
        return early_quote(work, prev, pos, ctx)  # text, or a second quote, right after a string
    if char in "]}" and comma:
        return wrong_closer(work, pos, prev, ctx)
    if char == ":" and comma:
        opener = open_containers(work, pos)[0]
        where = f" opened at {ctx.where(opener[-1])}" if opener else ""
        return generic(msg + ": a ':' inside an array [ ]; key-value pairs belong in an object { }", pos)._replace(
            hint=f"Write a record with keys in curly braces: replace the '[' of this array{where} and its closing "
            "']' with '{' and '}'."
        )
    if before.isdigit() and prev + 1 == pos:
        return invalid_number(work, pos)
    if not VALUE_START.match(work, pos):
        return generic(msg, pos)
    at, next_at = prev + 1, ctx.where(pos)
    if comma:
        return Diagnosis(
            "missing-comma",
            at,
            f"a comma is missing here, at the end of this value (the next one starts at {next_at})",
            [(at, at, ",")],
        )
    return Diagnosis(
        "missing-colon", at, f"a ':' is missing after the key (the value starts at {next_at})", [(at, at, ":")]
    )


def generic(msg: str, pos: int) -> Diagnosis:
    """The fallback: the parser's own message, and no repair."""
    return Diagnosis("invalid-json", pos, f"invalid JSON: {msg}", None)


def next_nonspace(work: str, pos: int) -> str:
    """The first non-whitespace character at or after `pos`, or "" at the end (without copying the rest)."""
    end = SPACES.match(work, pos).end()
    return work[end : end + 1]


def prev_nonspace(work: str, pos: int) -> int:
    """Index of the last non-whitespace character before `pos`, or -1."""
    while pos > 0 and work[pos - 1] in WS:
        pos -= 1
    return pos - 1


def string_opener(work: str, pos: int) -> int:
    """Index of the opening quote of the string `pos` is in: the last quote before it not escaped by a backslash."""
    i = pos
    while True:
        i = work.rfind('"', 0, i)
        j = i
        while j > 0 and work[j - 1] == "\\":
            j -= 1
        if i <= 0 or (i - j) % 2 == 0:
            return max(i, 0)


def lexical(work: str, pos: int, value_expected: bool) -> Diagnosis | None:
    """Problems visible in the character(s) at `pos` alone, whatever the parser expected; None if none."""
    char = work[pos]
    if char in FULLWIDTH:
        return fullwidth(work, pos)
    if char in INVISIBLE:
        return Diagnosis(
            "invisible-character", pos, f"an invisible {INVISIBLE[char]} outside any string", [(pos, pos + 1, " ")]
        )
    if work.startswith("/*", pos):
        end = work.find("*/", pos + 2)
        end, what = (len(work), "a /* comment that is never closed") if end < 0 else (end + 2, "a /* */ comment")
        return Diagnosis("json-comment", pos, what, [(pos, end, re.sub(r"[^\n]", " ", work[pos:end]))])
    if work.startswith("//", pos) or char == "#":
        end = work.find("\n", pos) % (len(work) + 1)
        end -= work[end - 1] == "\r"  # keep a CRLF line ending whole
        return Diagnosis(
            "json-comment", pos, f"a {'//' if char == '/' else '#'} comment", [(pos, end, " " * (end - pos))]
        )
    if not value_expected:
        return None
    if char == "'":
        quoted = SINGLE_QUOTED.match(work, pos)
        if not quoted:
            return Diagnosis("single-quotes", pos, "a single-quoted string that is not closed on this line", None)
        inner = PY_ESCAPE.sub(python_escape_to_json, quoted.group(1))
        return Diagnosis(
            "single-quotes",
            pos,
            "a string in single quotes: JSON needs double quotes",
            [(pos, quoted.end(), f'"{inner}"')],
        )
    literal = PY_LITERAL.match(work, pos)
    if literal:
        word = literal.group()
        return Diagnosis(
            "python-literal",
            pos,
            f"Python's {word} instead of JSON's {PY_LITERALS[word]}",
            [(pos, literal.end(), PY_LITERALS[word])],
        )
    constant = CONSTANT.match(work, pos)
    if constant:
        return Diagnosis(
            "nan-infinity",
            pos,
            f"{constant.group()} is not a valid JSON value",
            [(pos, constant.end(), "null")],
            constant.group(),
        )
    return None


def python_escape_to_json(match: re.Match) -> str:
    """Rewrite one escape (or bare double quote) of a Python single-quoted string for a JSON string."""
    escape = match.group(1)
    if escape is None:
        return '\\"'
    if escape == "'":
        return "'"
    return "\\u00" + escape[1:] if escape.startswith("x") and len(escape) == 3 else match.group()


def fullwidth(work: str, pos: int) -> Diagnosis | None:
    """A full-width (Chinese input method) character where JSON syntax belongs; quotes are repaired in pairs."""
    char = work[pos]
    if char in "，：":
        following = next_nonspace(work, pos + 1)
        if (
            following
            and following not in "\"“”'‘{｛[［【-0123456789tfnTFNI}]｝］】"
            and work[prev_nonspace(work, pos)] == '"'
        ):
            return None  # more likely a quote ended the string too early and this is text: early_quote says so
    edits = [(pos, pos + 1, FULLWIDTH[char])]
    shown = "full-width space" if char == "\u3000" else f"full-width '{char}'"
    message = f"{shown} (U+{ord(char):04X}) used as JSON syntax; use ASCII '{FULLWIDTH[char]}'"
    if FULLWIDTH[char] == '"':  # its partner on this line must change too, or the string runs on
        partner = QUOTE_OR_NEWLINE.search(work, pos + 1)
        if partner and partner.group() in "“”‘’＂":
            edits.append((partner.start(), partner.end(), '"'))
    return Diagnosis("fullwidth-punctuation", pos, message, edits, char)


def early_quote(work: str, quote: int, pos: int, ctx) -> Diagnosis:
    """Text follows the quote that closed a string: an unescaped quote, a full-width closer, or a missing quote."""
    opener = string_opener(work, quote)
    content = work[opener + 1 : quote]
    for closer in MISTYPED_CLOSER.finditer(content):  # "key”: ... the full-width quote was meant to close
        if ("“" if closer.group() == "”" else "‘") not in content[: closer.start()]:
            at, char = opener + 1 + closer.start(), closer.group()
            return Diagnosis(
                "fullwidth-punctuation",
                at,
                f"full-width '{char}' (U+{ord(char):04X}) used as a closing quote; use ASCII '\"'",
                [(at, at + 1, '"')],
                char,
            )
    stripped = content.rstrip(" \t")
    if stripped.endswith((",", "，")) and KEY_AHEAD.match(work, pos):  # "a, "b": 1 -- the closing quote is missing
        at = opener + len(stripped)
        return Diagnosis(
            "unterminated-string", at, f"the string opened at {ctx.where(opener)} is not closed", [(at, at, '"')]
        )
    line_end = work.find("\n", pos) % (len(work) + 1)
    real = REAL_CLOSER.search(work, pos, line_end)
    inner = [pos + m.start() for m in re.finditer(r'(?<!\\)"', work[pos : real.start()])] if real else []
    return Diagnosis(
        "unescaped-quote",
        quote,
        f'this " ends the string opened at {ctx.where(opener)} too early: text follows it',
        [(i, i + 1, '\\"') for i in [quote] + inner],
    )


def control_character(work: str, pos: int, ctx) -> Diagnosis:
    """A raw control character in a string: escape them all, moving raw newlines after the closing quote."""
    opener, char = string_opener(work, pos), work[pos]
    tail = STRING_TAIL.match(work, pos)
    after = tail and next_nonspace(work, tail.end())
    if char in "\r\n" and (not tail or after not in (",", "}", "]", ":", "")):
        newline = pos + 1 if work.startswith("\r\n", pos) else pos
        if NEXT_MEMBER.match(work, newline + 1):  # the next line starts a new item: the quote was forgotten
            stripped = work[opener + 1 : pos].rstrip(" \t")
            at = opener + 1 + len(stripped) - stripped.endswith((",", "，"))
            return Diagnosis(
                "unterminated-string",
                at,
                f"the string opened at {ctx.where(opener)} is not closed before the end of the line",
                [(at, at, '"')],
            )
    if not tail:
        return truncated(work, ctx)
    close = tail.end() - 1
    body = work[pos:close]
    escaped = CONTROL.sub(lambda m: ESCAPES.get(m.group(), "\\u%04x" % ord(m.group())), body)
    count = len(CONTROL.findall(body)) - body.count("\r\n")  # a Windows line break counts once
    name = CONTROL_NAMES.get(work[pos : pos + 2]) or CONTROL_NAMES.get(
        char, f"the raw control character U+{ord(char):04X}"
    )
    more = f"; it has {count} raw control characters in all" if count > 1 else ""
    # the newlines move to just after the closing quote: the repaired text keeps every line where it was
    return Diagnosis(
        "control-character-in-string",
        pos,
        f"{name} inside the string opened at {ctx.where(opener)}{more}",
        [(pos, close + 1, escaped + '"' + "\n" * body.count("\n"))],
    )


def invalid_escape(work: str, pos: int) -> Diagnosis:
    """An escape JSON does not know: \\' loses its backslash, \\xNN becomes \\u00NN, others get doubled."""
    escape = work[pos : pos + 2]
    if escape == "\\'":
        edits = [(pos, pos + 1, "")]
    elif re.match(r"\\x[0-9a-fA-F]{2}", work[pos : pos + 4]):
        edits = [(pos, pos + 2, "\\u00")]
    else:
        edits = [(pos, pos + 1, "\\\\")]
    return Diagnosis("invalid-escape", pos, f"'{escape}' is not a valid escape in a JSON string", edits, escape)


def open_containers(work: str, end: int) -> tuple[list[int], int | None]:
    """Openers of the arrays/objects still open at `end`, and of a string still open there (else None)."""
    stack: list[int] = []
    for match in SCAN.finditer(work, 0, end):
        token = match.group()
        if token[0] == '"':
            if not match.group(1):
                return stack, match.start()
        elif token in "[{":
            stack.append(match.start())
        elif stack:
            stack.pop()
    return stack, None


def truncated(work: str, ctx) -> Diagnosis:
    """The text ends while a string, array or object is still open: say which, and where each was opened."""
    stack, string = open_containers(work, len(work))
    parts = [f"the string opened at {ctx.where(string)}"] if string is not None else []
    parts += [f"the {KIND[work[i]]} opened at {ctx.where(i)}" for i in reversed(stack)]
    if not parts:
        return generic("unexpected end of text", len(work))
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return Diagnosis(
        "truncated-json",
        len(work.rstrip(WS)),
        f"{ctx.what} ends too early: {listed} {'is' if len(parts) == 1 else 'are'} never closed",
        None,
    )


def unterminated_at_end(work: str, pos: int, ctx) -> Diagnosis:
    """A string runs to the end of the text: a missing closing quote if closers follow it, else truncation."""
    rest = work[pos + 1 :].rstrip(WS)
    closers = len(rest) - len(rest.rstrip("}]"))
    if closers and closers == len(open_containers(work, pos)[0]):
        at = pos + 1 + len(rest) - closers
        return Diagnosis(
            "unterminated-string", at, f"the string opened at {ctx.where(pos)} is not closed", [(at, at, '"')]
        )
    return truncated(work, ctx)


def wrong_closer(work: str, pos: int, prev: int, ctx) -> Diagnosis:
    """A ']' or '}' that does not close the innermost open bracket: that one was left open, or this is a typo."""
    stack = open_containers(work, pos)[0]
    if not stack:
        return generic("unexpected closing bracket", pos)
    inner, char = work[stack[-1]], work[pos]
    closer = "]" if inner == "[" else "}"
    if len(stack) > 1 and work[stack[-2]] + char in ("[]", "{}"):  # it closes the outer one: the inner was left open
        return Diagnosis(
            "unclosed-bracket",
            prev + 1,
            f"the {KIND[inner]} opened at {ctx.where(stack[-1])} is "
            f"not closed: a '{closer}' is missing here, before the '{char}' at {ctx.where(pos)}",
            [(prev + 1, prev + 1, closer)],
        )
    ending = not work[pos + 1 :].strip(WS + "]}")  # at the very end, a typo for the right closer; else a stray one
    return Diagnosis(
        "mismatched-bracket",
        pos,
        f"'{char}' does not close the {KIND[inner]} opened at {ctx.where(stack[-1])}",
        [(pos, pos + 1, closer if ending else " ")],
        hint=f"Write '{closer}' here: the {KIND[inner]} opened at {ctx.where(stack[-1])} closes with '{closer}'."
        if ending
        else f"Delete this '{char}': nothing open here closes with it.",
    )


def braces_for_list(work: str, pos: int, opener: int, ctx) -> Diagnosis:
    """An object whose first member is an object or array with no key: a list written with { } (a tutorial's
    "conversations": { {...}, {...} }). The repair turns the braces into [ ] so the records can be checked."""
    closer = _matching_closer(work, opener)
    key = _KEY_BEFORE.search(work, 0, opener)
    named = f'"{key.group(1)}" holds' if key else "this is"
    edits = [(opener, opener + 1, "[")] + ([(closer, closer + 1, "]")] if closer is not None else [])
    ends = f", up to the '}}' at {ctx.where(closer)}," if closer is not None else ""
    return Diagnosis(
        "braces-for-list",
        opener,
        f"{named} a list of {KIND[work[pos]]}s without keys, but it is "
        f"written with '{{'{ends} where a list needs '[' ... ']'",
        edits,
    )


def _matching_closer(work: str, opener: int) -> int | None:
    """The position of the bracket that closes the one at ``opener`` (strings skipped), or None."""
    depth = 0
    for match in SCAN.finditer(work, opener):
        token = match.group()
        if token[0] == '"':
            continue
        depth += 1 if token in "[{" else -1
        if depth == 0:
            return match.start()
    return None


def extra_data(work: str, pos: int, ctx) -> Diagnosis:
    """Something follows the complete JSON value: a second record, a stray closer, or other text."""
    char, ended = work[pos], ctx.where(prev_nonspace(work, pos))
    if char in "]}":
        return Diagnosis(
            "extra-data",
            pos,
            f"an extra '{char}' after the JSON value that ended at {ended}",
            [(pos, pos + 1, " ")],
            hint=f"Delete this '{char}': what it would close is closed already.",
        )
    if char not in "{[,":
        return Diagnosis("extra-data", pos, f"unexpected text after the JSON value that ended at {ended}", None)
    advice = (
        "put each record on its own line"
        if ctx.record is not None
        else "this looks like JSON Lines (one "
        "record per line): name the file .jsonl, or put all records inside one [ ] separated by commas"
    )
    fix = (
        "Put each record on its own line."
        if ctx.record is not None
        else "Name the file .jsonl (one record "
        "per line), or put all the records inside one [ ] with commas between them."
    )
    return Diagnosis(
        "extra-data", pos, f"a second value starts here, after the first ended at {ended}; {advice}", None, hint=fix
    )
