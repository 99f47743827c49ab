"""Say why a hand-written JSON text does not parse: exact line:column, a stable code and a plain hint.

`diagnose_json` runs only after a fast parser has rejected the text, so clarity beats speed there: it takes
the standard `json` parser's error position as the anchor, classifies the characters around it, repairs
them in a working copy and parses again, so one run lists every problem. (`decode_text`, re-exported here,
lives in `ftbench.data.encoding`.)
"""

from __future__ import annotations

import json
import re
from typing import NamedTuple

from ftbench.api.findings import Finding
from ftbench.data.encoding import decode_text  # noqa: F401  (part of this module's API)

_WS = " \t\n\r"  # JSON's whitespace; anything else between tokens is an error
_FULLWIDTH = {"，": ",", "：": ":", "“": '"', "”": '"', "‘": '"', "’": '"', "＂": '"', "｛": "{", "｝": "}",
              "［": "[", "］": "]", "【": "[", "】": "]", "\u3000": " "}
_INVISIBLE = {"\ufeff": "byte order mark (U+FEFF)", "\u200b": "zero-width space (U+200B)",
              "\u00a0": "no-break space (U+00A0)"}
_CONTROL_NAMES = {"\n": "a raw newline (U+000A)", "\r": "a raw carriage return (U+000D)", "\t": "a raw tab (U+0009)",
                  "\r\n": "a raw line break (CR LF)"}
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_PY_LITERALS = {"True": "true", "False": "false", "None": "null"}
_KIND = {"[": "array", "{": "object"}
# codes that repeat along one line (a printed Python dict, full-width typing) are reported once per line
_GROUPED = {"single-quotes", "python-literal", "fullwidth-punctuation", "invalid-escape", "unquoted-string",
            "invisible-character", "nan-infinity"}

_SPACES = re.compile(r"[ \t\n\r]*")
_CONTROL = re.compile(r"[\x00-\x1f]")
_STRING_TAIL = re.compile(r'(?:[^"\\]|\\.)*"', re.S)  # the rest of a string, raw control characters allowed
_SCAN = re.compile(r'"(?:[^"\\]|\\.)*("?)|[\[\]{}]', re.S)  # strings and brackets, to see what is still open
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.S)
_CONSTANT = re.compile(r"[-+]?(?:NaN|nan|Infinity|infinity|inf|Inf)(?!\w)")
_PY_LITERAL = re.compile(r"(?:True|False|None)(?!\w)")
_SINGLE_QUOTED = re.compile(r"'((?:[^'\\\n]|\\.)*)'")
_PY_ESCAPE = re.compile(r'\\(x[0-9a-fA-F]{2}|.)|"')
_VALUE_START = re.compile(r'["{\[\-0-9]|(?:true|false|null)(?!\w)')
_BARE_KEY = re.compile(r'[^\s"\':：,，{}\[\]]+')
_BARE_VALUE = re.compile(r'[^\s"\',，:{}\[\]][^"\n,，:{}\[\]]*')
_MISTYPED_CLOSER = re.compile(r"[”’](?=[ \t]*[:：,，}\]])")
_NEXT_MEMBER = re.compile(r'[ \t]*(?:"[^"\n]*"[ \t]*[:：]|[}\]{])')
_QUOTE_OR_NEWLINE = re.compile(r'["“”‘’＂\n]')
_KEY_AHEAD = re.compile(r'[^"\n]*"[ \t]*[:：]')
# the quote that really ends a string: followed by ':' or a closer, by ',' and a new item, or by the line end
_REAL_CLOSER = re.compile(r'(?<!\\)"(?=[ \t]*(?:[:}\]]|,[ \t]*(?:["{\[\r\n]|$)|[\r\n]|$))')

_HINTS = {
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
    "invalid-escape": "JSON knows only \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX: write a backslash twice "
                      "(a Windows path as C:\\\\Users\\\\me), and \\' as a plain '.",
    "unquoted-string": 'Put the text in double quotes, e.g. "instruction" or "你好".',
    "invisible-character": "Delete it; it comes from copying out of a web page or Word, or from joined files.",
    "unclosed-bracket": "Add the missing closing bracket here.",
    "mismatched-bracket": "Make the brackets match: every [ closes with ] and every { with }.",
    "extra-data": "A JSON text holds exactly one value; delete what follows it.",
    "invalid-number": "Write numbers the JSON way: no leading zeros, + signs, hex, or bare '.5' / '5.'.",
    "empty-json": "Write a JSON value (for a dataset, a [ ] list of records).",
    "invalid-json": "Check the character here and the one just before it.",
}


class _Diagnosis(NamedTuple):
    """One problem in the working copy: where, what, and the edits (start, end, new) repairing it (None: stop)."""

    code: str
    pos: int
    message: str
    edits: list[tuple[int, int, str]] | None
    detail: str = ""  # listed in the merged message when the same code repeats on a line


class _Context:
    """The original text and the repairs made to its working copy, to report positions in the original."""

    def __init__(self, text: str, first_line: int, record: int | None):
        self.text, self.first_line, self.record = text, first_line, record
        self.what = "the file" if record is None else "the line"
        self._edits: list[tuple[int, int, int]] = []  # (start, old length, new length), in application order

    def apply(self, work: str, edits: list[tuple[int, int, str]]) -> str:
        """Apply edits right to left, so each one's positions are still valid when it is applied."""
        for start, end, new in sorted(edits, reverse=True):
            self._edits.append((start, end - start, len(new)))
            work = work[:start] + new + work[end:]
        return work

    def line_col(self, pos: int) -> tuple[int, int]:
        """File line and 1-based character column, in the original text, of a working-copy position."""
        for start, old_len, new_len in reversed(self._edits):
            if pos >= start + new_len:
                pos += old_len - new_len
            elif pos > start:
                pos = start + min(pos - start, max(old_len - 1, 0))
        return self.first_line + self.text.count("\n", 0, pos), pos - self.text.rfind("\n", 0, pos)

    def where(self, pos: int) -> str:
        """`line:column` of a working-copy position, for messages."""
        return "%d:%d" % self.line_col(pos)


class _ConstantFound(Exception):
    """Raised from json's parse_constant hook: Python's json accepts NaN and Infinity, JSON does not."""

    @staticmethod
    def hook(name: str):
        """parse_constant hook that turns NaN / Infinity into an error."""
        raise _ConstantFound(name)


def _first_problem(work: str) -> tuple[str, int] | None:
    """The json module's (message, position) for the first problem in `work`, or None if it is valid JSON."""
    try:
        json.loads(work, parse_constant=_ConstantFound.hook)
    except _ConstantFound:
        # everything before the constant parsed, so this string-aware scan is in step with the parser
        first = next((m for m in _STRING_OR_CONSTANT.finditer(work) if m.group(1)), None)
        return "constant", first.start() if first else 0
    except json.JSONDecodeError as err:
        return err.msg, err.pos
    except (ValueError, RecursionError) as err:  # e.g. a 5000-digit number, or nesting deeper than the stack
        return str(err) or type(err).__name__, 0
    return None


def diagnose_json(text: str, file: str, *, first_line: int = 1, record: int | None = None,
                  max_findings: int = 50) -> tuple[str | None, list[Finding]]:
    """Find every syntax problem in a JSON text (a whole file, or one JSONL line that is line `first_line`).

    Returns (repaired text, findings). The repaired text parses with json.loads and keeps every newline, so
    records stay on their lines; it is None when a problem could not be repaired or `max_findings` was hit.
    """
    ctx = _Context(text, first_line, record)
    work, findings = text, []
    merged: dict[tuple[str, int], list[str]] = {}  # (code, line) -> details of the repeats folded into it
    for _ in range(max(max_findings, 1) * 20):  # bound the repairs: a grouped finding can take many
        problem = _first_problem(work)
        if problem is None:
            return work, _finish(findings, merged)  # no findings: json accepts what the caller's parser refused
        diagnosis = _classify(work, *problem, ctx)
        line, column = ctx.line_col(diagnosis.pos)
        if diagnosis.code in _GROUPED and (diagnosis.code, line) in merged:
            merged[(diagnosis.code, line)].append(diagnosis.detail)
        elif len(findings) == max_findings:
            findings.append(Finding("too-many-findings", f"stopped after {max_findings} problems", "warning",
                                    "Fix these and run validate again.", file, line, column, record))
            return None, _finish(findings, merged)
        else:
            merged[(diagnosis.code, line)] = []
            findings.append(Finding(diagnosis.code, diagnosis.message, "error", _HINTS[diagnosis.code],
                                    file, line, column, record))
        if diagnosis.edits is None:
            return None, _finish(findings, merged)
        work = ctx.apply(work, diagnosis.edits)
    return None, _finish(findings, merged)


def _finish(findings: list[Finding], merged: dict[tuple[str, int], list[str]]) -> list[Finding]:
    """Add "(and N more on this line)" to the findings that stand for several repeats."""
    for finding in findings:
        repeats = merged.get((finding.code, finding.line or 0))
        if repeats:
            shown = " ".join(dict.fromkeys(d for d in repeats if d))
            finding.message += f" (and {len(repeats)} more on this line{': ' + shown if shown else ''})"
    return findings


def _classify(work: str, msg: str, pos: int, ctx: _Context) -> _Diagnosis:
    """Decide what the problem at `pos` is, from the parser's message and the characters around it."""
    if msg.startswith("Invalid control character"):
        return _control_character(work, pos, ctx)
    if msg.startswith("Invalid \\"):  # the \uXXXX variant points just after the backslash
        return _invalid_escape(work, pos if work[pos] == "\\" else pos - 1)
    if msg == "constant":
        return _lexical(work, pos, True) or _generic(msg, pos)
    if msg.startswith("Unterminated string"):
        return _unterminated_at_end(work, pos, ctx)
    if msg.startswith("Illegal trailing comma"):  # Python 3.13+ says so itself, pointing at the comma
        return _Diagnosis("trailing-comma", pos, "a comma after the last item", [(pos, pos + 1, " ")])
    if not work.strip(_WS):
        return _Diagnosis("empty-json", 0, f"{ctx.what} holds no JSON value", None)
    if not _next_nonspace(work, pos):
        return _truncated(work, ctx)
    value_expected = msg.startswith(("Expecting value", "Expecting property name"))
    # Python literals and the like only where a value belongs: after a string they are text (unescaped quote)
    lexical = _lexical(work, pos, value_expected)
    if lexical:
        return lexical
    if msg.startswith("Extra data"):
        return _extra_data(work, pos, ctx)
    prev = _prev_nonspace(work, pos)
    before = work[prev] if prev >= 0 else " "  # not "": '' is "in" every string
    if work[pos] == "{" and before in ",\"0123456789el]}":  # an object where a key or ',' belongs: '}' forgotten?
        stack = _open_containers(work, pos)[0]
        if stack and work[stack[-1]] == "{":
            at, fix = (prev, "}") if before == "," else (prev + 1, "},")
            return _Diagnosis("unclosed-bracket", at, f"the object opened at {ctx.where(stack[-1])} is not closed "
                              f"before the next object at {ctx.where(pos)}: a '}}' is missing", [(at, at, fix)])
    if value_expected:
        return _no_value(work, msg, pos, prev) or _generic(msg, pos)
    if msg.startswith(("Expecting ',' delimiter", "Expecting ':' delimiter")):
        return _no_delimiter(work, msg, pos, prev, ctx)
    return _generic(msg, pos)


def _no_value(work: str, msg: str, pos: int, prev: int) -> _Diagnosis | None:
    """The parser wanted a value or a key at `pos` (after '[', '{', ',' or ':') and found something else."""
    char, before = work[pos], work[prev] if prev >= 0 else " "
    if char in "]}" and before == ",":
        return _Diagnosis("trailing-comma", prev, f"a comma after the last item, before '{char}'",
                          [(prev, prev + 1, " ")])
    if char == "," and before in ",[{":
        return _Diagnosis("extra-comma", pos, "an extra comma with no item before it", [(pos, pos + 1, " ")])
    if char in ",}" and before == ":":
        return _Diagnosis("missing-value", pos, "a value is missing after ':'", [(pos, pos, "null")])
    key = msg.startswith("Expecting property name")
    if not key and (char in "+." or char.isdigit()):
        return _Diagnosis("invalid-number", pos, "this number is not written the JSON way", None)
    bare = (_BARE_KEY if key else _BARE_VALUE).match(work, pos)
    if not bare:
        return None
    word = bare.group().rstrip()
    return _Diagnosis("unquoted-string", pos, f"{'key' if key else 'text'} without double quotes: {word[:30]}",
                      [(pos, pos + len(word), json.dumps(word, ensure_ascii=False))])


def _no_delimiter(work: str, msg: str, pos: int, prev: int, ctx: _Context) -> _Diagnosis:
    """The parser wanted ',' (or ':') after the value (or key) ending at `prev` and found something else."""
    char, before, comma = work[pos], work[prev], msg.startswith("Expecting ','")
    if before == '"' and (char not in ':,[]{}"' and not _VALUE_START.match(work, pos) or work[prev:pos + 1] == '""'):
        return _early_quote(work, prev, pos, ctx)  # text, or a second quote, right after a string
    if char in "]}" and comma:
        return _wrong_closer(work, pos, prev, ctx)
    if char == ":" and comma:
        return _generic(msg + ": a ':' inside an array [ ]; key-value pairs belong in an object { }", pos)
    if before.isdigit() and prev + 1 == pos:
        return _Diagnosis("invalid-number", pos, "this number is not written the JSON way", None)
    if not _VALUE_START.match(work, pos):
        return _generic(msg, pos)
    at, next_at = prev + 1, ctx.where(pos)
    if comma:
        return _Diagnosis("missing-comma", at, f"a comma is missing here, at the end of this value (the next one "
                          f"starts at {next_at})", [(at, at, ",")])
    return _Diagnosis("missing-colon", at, f"a ':' is missing after the key (the value starts at {next_at})",
                      [(at, at, ":")])


def _generic(msg: str, pos: int) -> _Diagnosis:
    """The fallback: the parser's own message, and no repair."""
    return _Diagnosis("invalid-json", pos, f"invalid JSON: {msg}", None)


def _next_nonspace(work: str, pos: int) -> str:
    """The first non-whitespace character at or after `pos`, or "" at the end (without copying the rest)."""
    end = _SPACES.match(work, pos).end()
    return work[end:end + 1]


def _prev_nonspace(work: str, pos: int) -> int:
    """Index of the last non-whitespace character before `pos`, or -1."""
    while pos > 0 and work[pos - 1] in _WS:
        pos -= 1
    return pos - 1


def _string_opener(work: str, pos: int) -> int:
    """Index of the opening quote of the string `pos` is in: the last quote before it not escaped by a backslash."""
    i = pos
    while True:
        i = work.rfind('"', 0, i)
        j = i
        while j > 0 and work[j - 1] == "\\":
            j -= 1
        if i <= 0 or (i - j) % 2 == 0:
            return max(i, 0)


def _lexical(work: str, pos: int, value_expected: bool) -> _Diagnosis | None:
    """Problems visible in the character(s) at `pos` alone, whatever the parser expected; None if none."""
    char = work[pos]
    if char in _FULLWIDTH:
        return _fullwidth(work, pos)
    if char in _INVISIBLE:
        return _Diagnosis("invisible-character", pos, f"an invisible {_INVISIBLE[char]} outside any string",
                          [(pos, pos + 1, " ")])
    if work.startswith("/*", pos):
        end = work.find("*/", pos + 2)
        end, what = (len(work), "a /* comment that is never closed") if end < 0 else (end + 2, "a /* */ comment")
        return _Diagnosis("json-comment", pos, what, [(pos, end, re.sub(r"[^\n]", " ", work[pos:end]))])
    if work.startswith("//", pos) or char == "#":
        end = work.find("\n", pos) % (len(work) + 1)
        end -= work[end - 1] == "\r"  # keep a CRLF line ending whole
        return _Diagnosis("json-comment", pos, f"a {'//' if char == '/' else '#'} comment",
                          [(pos, end, " " * (end - pos))])
    if not value_expected:
        return None
    if char == "'":
        quoted = _SINGLE_QUOTED.match(work, pos)
        if not quoted:
            return _Diagnosis("single-quotes", pos, "a single-quoted string that is not closed on this line", None)
        inner = _PY_ESCAPE.sub(_python_escape_to_json, quoted.group(1))
        return _Diagnosis("single-quotes", pos, "a string in single quotes: JSON needs double quotes",
                          [(pos, quoted.end(), f'"{inner}"')])
    literal = _PY_LITERAL.match(work, pos)
    if literal:
        word = literal.group()
        return _Diagnosis("python-literal", pos, f"Python's {word} instead of JSON's {_PY_LITERALS[word]}",
                          [(pos, literal.end(), _PY_LITERALS[word])])
    constant = _CONSTANT.match(work, pos)
    if constant:
        return _Diagnosis("nan-infinity", pos, f"{constant.group()} is not a valid JSON value",
                          [(pos, constant.end(), "null")], constant.group())
    return None


def _python_escape_to_json(match: re.Match) -> str:
    """Rewrite one escape (or bare double quote) of a Python single-quoted string for a JSON string."""
    escape = match.group(1)
    if escape is None:
        return '\\"'
    if escape == "'":
        return "'"
    return "\\u00" + escape[1:] if escape.startswith("x") and len(escape) == 3 else match.group()


def _fullwidth(work: str, pos: int) -> _Diagnosis | None:
    """A full-width (Chinese input method) character where JSON syntax belongs; quotes are repaired in pairs."""
    char = work[pos]
    if char in "，：":
        following = _next_nonspace(work, pos + 1)
        if following and following not in '"“”\'‘{｛[［【-0123456789tfnTFNI}]｝］】' and \
                work[_prev_nonspace(work, pos)] == '"':
            return None  # more likely a quote ended the string too early and this is text: _early_quote says so
    edits = [(pos, pos + 1, _FULLWIDTH[char])]
    shown = "full-width space" if char == "\u3000" else f"full-width '{char}'"
    message = f"{shown} (U+{ord(char):04X}) used as JSON syntax; use ASCII '{_FULLWIDTH[char]}'"
    if _FULLWIDTH[char] == '"':  # its partner on this line must change too, or the string runs on
        partner = _QUOTE_OR_NEWLINE.search(work, pos + 1)
        if partner and partner.group() in "“”‘’＂":
            edits.append((partner.start(), partner.end(), '"'))
    return _Diagnosis("fullwidth-punctuation", pos, message, edits, char)


def _early_quote(work: str, quote: int, pos: int, ctx: _Context) -> _Diagnosis:
    """Text follows the quote that closed a string: an unescaped quote, a full-width closer, or a missing quote."""
    opener = _string_opener(work, quote)
    content = work[opener + 1:quote]
    for closer in _MISTYPED_CLOSER.finditer(content):  # "key”: ... the full-width quote was meant to close
        if ("“" if closer.group() == "”" else "‘") not in content[:closer.start()]:
            at, char = opener + 1 + closer.start(), closer.group()
            return _Diagnosis("fullwidth-punctuation", at, f"full-width '{char}' (U+{ord(char):04X}) used as a "
                              "closing quote; use ASCII '\"'", [(at, at + 1, '"')], char)
    stripped = content.rstrip(" \t")
    if stripped.endswith((",", "，")) and _KEY_AHEAD.match(work, pos):  # "a, "b": 1 -- the closing quote is missing
        at = opener + len(stripped)
        return _Diagnosis("unterminated-string", at, f"the string opened at {ctx.where(opener)} is not closed",
                          [(at, at, '"')])
    line_end = work.find("\n", pos) % (len(work) + 1)
    real = _REAL_CLOSER.search(work, pos, line_end)
    inner = [pos + m.start() for m in re.finditer(r'(?<!\\)"', work[pos:real.start()])] if real else []
    return _Diagnosis("unescaped-quote", quote, f'this " ends the string opened at {ctx.where(opener)} too early: '
                      "text follows it", [(i, i + 1, '\\"') for i in [quote] + inner])


def _control_character(work: str, pos: int, ctx: _Context) -> _Diagnosis:
    """A raw control character in a string: escape them all, moving raw newlines after the closing quote."""
    opener, char = _string_opener(work, pos), work[pos]
    tail = _STRING_TAIL.match(work, pos)
    after = tail and _next_nonspace(work, tail.end())
    if char in "\r\n" and (not tail or after not in (",", "}", "]", ":", "")):
        newline = pos + 1 if work.startswith("\r\n", pos) else pos
        if _NEXT_MEMBER.match(work, newline + 1):  # the next line starts a new item: the quote was forgotten
            stripped = work[opener + 1:pos].rstrip(" \t")
            at = opener + 1 + len(stripped) - stripped.endswith((",", "，"))
            return _Diagnosis("unterminated-string", at, f"the string opened at {ctx.where(opener)} is not closed "
                              "before the end of the line", [(at, at, '"')])
    if not tail:
        return _truncated(work, ctx)
    close = tail.end() - 1
    body = work[pos:close]
    escaped = _CONTROL.sub(lambda m: _ESCAPES.get(m.group(), "\\u%04x" % ord(m.group())), body)
    count = len(_CONTROL.findall(body)) - body.count("\r\n")  # a Windows line break counts once
    name = _CONTROL_NAMES.get(work[pos:pos + 2]) or _CONTROL_NAMES.get(char, f"the raw control character "
                                                                         f"U+{ord(char):04X}")
    more = f"; it has {count} raw control characters in all" if count > 1 else ""
    # the newlines move to just after the closing quote: the repaired text keeps every line where it was
    return _Diagnosis("control-character-in-string", pos, f"{name} inside the string opened at "
                      f"{ctx.where(opener)}{more}", [(pos, close + 1, escaped + '"' + "\n" * body.count("\n"))])


def _invalid_escape(work: str, pos: int) -> _Diagnosis:
    """An escape JSON does not know: \\' loses its backslash, \\xNN becomes \\u00NN, others get doubled."""
    escape = work[pos:pos + 2]
    if escape == "\\'":
        edits = [(pos, pos + 1, "")]
    elif re.match(r"\\x[0-9a-fA-F]{2}", work[pos:pos + 4]):
        edits = [(pos, pos + 2, "\\u00")]
    else:
        edits = [(pos, pos + 1, "\\\\")]
    return _Diagnosis("invalid-escape", pos, f"'{escape}' is not a valid escape in a JSON string", edits, escape)


def _open_containers(work: str, end: int) -> tuple[list[int], int | None]:
    """Openers of the arrays/objects still open at `end`, and of a string still open there (else None)."""
    stack: list[int] = []
    for match in _SCAN.finditer(work, 0, end):
        token = match.group()
        if token[0] == '"':
            if not match.group(1):
                return stack, match.start()
        elif token in "[{":
            stack.append(match.start())
        elif stack:
            stack.pop()
    return stack, None


def _truncated(work: str, ctx: _Context) -> _Diagnosis:
    """The text ends while a string, array or object is still open: say which, and where each was opened."""
    stack, string = _open_containers(work, len(work))
    parts = [f"the string opened at {ctx.where(string)}"] if string is not None else []
    parts += [f"the {_KIND[work[i]]} opened at {ctx.where(i)}" for i in reversed(stack)]
    if not parts:
        return _generic("unexpected end of text", len(work))
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return _Diagnosis("truncated-json", len(work.rstrip(_WS)), f"{ctx.what} ends too early: {listed} "
                      f"{'is' if len(parts) == 1 else 'are'} never closed", None)


def _unterminated_at_end(work: str, pos: int, ctx: _Context) -> _Diagnosis:
    """A string runs to the end of the text: a missing closing quote if closers follow it, else truncation."""
    rest = work[pos + 1:].rstrip(_WS)
    closers = len(rest) - len(rest.rstrip("}]"))
    if closers and closers == len(_open_containers(work, pos)[0]):
        at = pos + 1 + len(rest) - closers
        return _Diagnosis("unterminated-string", at, f"the string opened at {ctx.where(pos)} is not closed",
                          [(at, at, '"')])
    return _truncated(work, ctx)


def _wrong_closer(work: str, pos: int, prev: int, ctx: _Context) -> _Diagnosis:
    """A ']' or '}' that does not close the innermost open bracket: that one was left open, or this is a typo."""
    stack = _open_containers(work, pos)[0]
    if not stack:
        return _generic("unexpected closing bracket", pos)
    inner, char = work[stack[-1]], work[pos]
    closer = "]" if inner == "[" else "}"
    if len(stack) > 1 and work[stack[-2]] + char in ("[]", "{}"):  # it closes the outer one: the inner was left open
        return _Diagnosis("unclosed-bracket", prev + 1, f"the {_KIND[inner]} opened at {ctx.where(stack[-1])} is "
                          f"not closed: a '{closer}' is missing here, before the '{char}' at {ctx.where(pos)}",
                          [(prev + 1, prev + 1, closer)])
    ending = not work[pos + 1:].strip(_WS + "]}")  # at the very end, a typo for the right closer; else a stray one
    return _Diagnosis("mismatched-bracket", pos, f"'{char}' does not close the {_KIND[inner]} opened at "
                      f"{ctx.where(stack[-1])}", [(pos, pos + 1, closer if ending else " ")])


def _extra_data(work: str, pos: int, ctx: _Context) -> _Diagnosis:
    """Something follows the complete JSON value: a second record, a stray closer, or other text."""
    char, ended = work[pos], ctx.where(_prev_nonspace(work, pos))
    if char in "]}":
        return _Diagnosis("extra-data", pos, f"an extra '{char}' after the JSON value that ended at {ended}",
                          [(pos, pos + 1, " ")])
    if char not in "{[,":
        return _Diagnosis("extra-data", pos, f"unexpected text after the JSON value that ended at {ended}", None)
    advice = ("put each record on its own line" if ctx.record is not None else "this looks like JSON Lines (one "
              "record per line): name the file .jsonl, or put all records inside one [ ] separated by commas")
    return _Diagnosis("extra-data", pos, f"a second value starts here, after the first ended at {ended}; {advice}",
                      None)
