"""A finding is one thing `validate` (or any later check) says about the data, with where it is."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Severity = Literal["error", "warning", "note"]  # a note: something not checked, said so


@dataclass(slots=True)
class Finding:
    """One error, warning or note, located as precisely as we can: file:line:column, or record index + field path.

    ``record`` is the 0-based index of the record in its file; ``path`` is a field path such as
    ``[12].conversations[3].from``. Fields that do not apply are None.
    """

    code: str
    message: str
    severity: Severity = "error"
    hint: str | None = None
    file: str | None = None
    line: int | None = None
    column: int | None = None
    record: int | None = None
    path: str | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        d.pop("severity")
        return d

    def location(self) -> str:
        """`file:line:column` (as far as known), then the field path: what an editor or a human can jump to."""
        parts = [self.file or "<input>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        loc = ":".join(parts)
        if self.path:
            loc += f" {self.path}"
        elif self.record is not None:
            loc += f" [{self.record}]"
        return loc

    def one_line(self) -> str:
        text = f"{self.location()}: {self.severity} [{self.code}] {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text
