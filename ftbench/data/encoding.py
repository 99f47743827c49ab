"""Bytes to text for data files: a UTF-8 BOM, UTF-16/32 and invalid UTF-8 (often GBK) become findings with
their position and a fix, and the text is always usable. Runs on every file: one C call for clean UTF-8."""

from __future__ import annotations

import codecs

from ftbench.api.findings import Finding


def decode_text(data: bytes, file: str) -> tuple[str, list[Finding]]:
    """Turn file bytes into text, reporting a BOM, UTF-16/32 or invalid UTF-8; always returns usable text."""
    findings: list[Finding] = []
    wide = _wide_encoding(data)
    if wide:
        findings.append(
            Finding(
                "not-utf8",
                f"the file is encoded as {wide.upper()}, not UTF-8",
                file=file,
                line=1,
                column=1,
                hint=f"Re-save it as UTF-8 (Windows Notepad calls UTF-16 'Unicode'), e.g. "
                f"`iconv -f {wide.upper()} -t UTF-8 {file} > {_fixed_name(file)}`.",
            )
        )
        return data.decode(wide, errors="replace"), findings
    if data.startswith(codecs.BOM_UTF8):
        findings.append(
            Finding(
                "utf8-bom",
                "the file starts with a UTF-8 byte order mark (BOM)",
                file=file,
                line=1,
                column=1,
                hint="Re-save it as UTF-8 without BOM (VS Code: click 'UTF-8 with BOM' in the status bar); many "
                "JSON parsers, including Python's json, reject the BOM.",
            )
        )
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8"), findings  # the happy path: one C call
    except UnicodeDecodeError as err:
        bad = err.start
    line_start = data.rfind(b"\n", 0, bad) + 1
    line_end = data.find(b"\n", bad) % (len(data) + 1)  # -1 (last line) becomes len(data)
    message = f"byte 0x{data[bad]:02X} is not valid UTF-8"
    try:
        data.decode("gb18030")
    except UnicodeDecodeError:
        hint = "The file is not UTF-8 (maybe Latin-1/Windows-1252, or mixed encodings); re-save it as UTF-8."
    else:
        shown = data[line_start:line_end].decode("gb18030").strip()
        message += f"; the file decodes as GB18030 (Chinese GBK), where this line reads: {shown[:60]}"
        hint = (
            f"The file is GBK/GB18030, not UTF-8: re-save it as UTF-8, e.g. `iconv -f GB18030 -t UTF-8 "
            f"{file} > {_fixed_name(file)}` (VS Code: Reopen with Encoding GB18030, then Save with Encoding "
            "UTF-8)."
        )
    column = len(data[line_start:bad].decode("utf-8")) + 1  # columns count characters, not bytes
    findings.append(
        Finding("invalid-utf8", message, hint=hint, file=file, line=data.count(b"\n", 0, bad) + 1, column=column)
    )
    return data.decode("utf-8", errors="replace"), findings


def _fixed_name(file: str) -> str:
    """fixed.json, fixed.csv, ...: the name the re-encoding command writes, with the file's own extension."""
    ext = file.rsplit(".", 1)[-1] if "." in file.rsplit("/", 1)[-1] else "json"
    return f"fixed.{ext}"


def _wide_encoding(data: bytes) -> str | None:
    """The UTF-16/32 codec `data` is in (by BOM, or by being full of NUL bytes), or None."""
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = data[:4096]
    if len(head) < 2 or head.count(0) * 4 < len(head):
        return None
    return "utf-16-le" if head[1::2].count(0) > head[0::2].count(0) else "utf-16-be"
