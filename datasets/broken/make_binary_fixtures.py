"""Write the fixtures whose exact bytes an editor would silently change: BOM, GBK, UTF-16, raw tabs.

Run from anywhere: `python datasets/broken/make_binary_fixtures.py`. The outputs are committed too, so the
tests never depend on running this; rerun it only to regenerate them.
"""

from __future__ import annotations

import codecs
from pathlib import Path

HERE = Path(__file__).resolve().parent

ALPACA = """[
  {
    "instruction": "用三个词形容秋天。",
    "input": "",
    "output": "凉爽、金黄、丰收"
  }
]
"""

# line 1 is plain ASCII (same bytes in GBK and UTF-8); lines 2 and 3 hold Chinese, so their bytes differ
JSONL_LINES = [
    '{"instruction": "Say hello in Chinese.", "input": "", "output": "Ni hao"}',
    '{"instruction": "翻译成英文", "input": "早上好", "output": "Good morning"}',
    '{"instruction": "写一句问候语", "input": "", "output": "祝你天天开心！"}',
]

# raw newlines inside the first "output", raw tabs inside the second
CONTROL_CHARACTERS = """[
  {
    "instruction": "Write a haiku about autumn.",
    "input": "",
    "output": "Crisp leaves drift and fall
Golden light on quiet paths
The year breathes slowly"
  },
  {
    "instruction": "列出三种水果，用制表符分隔。",
    "input": "",
    "output": "苹果\t香蕉\t橙子"
  }
]
"""


def main() -> None:
    """Write every generated fixture next to this script."""
    (HERE / "utf8-bom.json").write_bytes(codecs.BOM_UTF8 + ALPACA.encode("utf-8"))
    (HERE / "invalid-utf8.jsonl").write_bytes("\n".join(JSONL_LINES + [""]).encode("gbk"))
    # what Windows Notepad calls "Unicode": UTF-16 little-endian with a BOM
    (HERE / "not-utf8.json").write_bytes(codecs.BOM_UTF16_LE + ALPACA.encode("utf-16-le"))
    (HERE / "control-character-in-string.json").write_bytes(CONTROL_CHARACTERS.encode("utf-8"))


if __name__ == "__main__":
    main()
