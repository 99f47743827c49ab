"""The request sent for each record: a template in the record's language, filled with `string.Template`.

`$name` variables (not `{name}`) because prompts quote JSON and `{{name}}` placeholders, which must pass through
untouched; `$$` is a literal dollar sign. Variables: $n, $record, $format, $keys, $language.
"""

from __future__ import annotations

import json
import string

from ftbench.api.errors import UsageError

VARIABLES = ("n", "record", "format", "keys", "language")
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}

DEFAULT_TEMPLATES = {
    "en": """You are helping to grow a fine-tuning dataset for a chat assistant. Here is one training record in $format format:

$record

Write $n new records in exactly the same JSON format: the same keys ($keys), the same structure and the same roles in the same order. Each new record must
- be about the same subject as the original, asked in a different way (rephrase the request, or change the situation or details), with an answer in the same style;
- stay faithful to the content of the original answer: do not add facts, names or numbers that it does not support;
- keep every template placeholder such as {{name}} exactly as it is written;
- be written in English, like the original;
- be clearly different from the original and from the other new records.

Reply with JSON only, no explanation, in this shape: {"records": [ ...$n records... ]}""",
    "zh": """你在帮忙扩充一个对话助手的微调数据集。下面是一条 $format 格式的训练数据：

$record

请写出 $n 条新数据，JSON 格式必须与原数据完全相同：相同的键（$keys）、相同的结构、相同顺序的角色。每条新数据必须：
- 与原数据主题相同，但换一种问法（改写提问，或改变情境、细节），回答风格与原数据一致；
- 忠实于原回答的内容：不要添加原回答不支持的事实、名字或数字；
- 原样保留所有模板占位符，例如 {{name}}；
- 与原数据一样使用中文；
- 与原数据以及其他新数据明显不同。

只回复 JSON，不要任何解释，格式为：{"records": [ ...$n 条数据... ]}""",
}


def record_language(text: str) -> str:
    """ "zh" when at least a fifth of the non-space characters are CJK ideographs, else "en"."""
    chars = [c for c in text if not c.isspace()]
    if not chars:
        return "en"
    cjk = sum(
        1
        for c in chars
        if "\u4e00" <= c <= "\u9fff"
        or "\u3400" <= c <= "\u4dbf"
        or "\u3000" <= c <= "\u303f"
        or "\uff00" <= c <= "\uffef"
    )
    return "zh" if cjk / len(chars) >= 0.2 else "en"


def describe_format(reader) -> str:
    """How the prompt names the record's format (with the column names actually used)."""
    if reader.name == "alpaca":
        return f"Alpaca ({reader.prompt} / {reader.query} / {reader.response})"
    if reader.name == "openai":
        return f'OpenAI messages (a "{reader.messages}" list of {reader.role_tag}/{reader.content_tag} turns)'
    return f'ShareGPT (a "{reader.messages}" list of {reader.role_tag}/{reader.content_tag} turns)'


class PromptBuilder:
    """Fills the prompt template for one record; the default template follows the record's language."""

    def __init__(self, reader, template_text: str | None = None, template_name: str = "--prompt-template"):
        self.format = describe_format(reader)
        self.custom = None
        if template_text is not None:
            self.custom = self._compile(template_text, template_name)
        self.defaults = {lang: string.Template(text) for lang, text in DEFAULT_TEMPLATES.items()}

    @staticmethod
    def _compile(text: str, name: str) -> string.Template:
        template = string.Template(text)
        if not template.is_valid():
            raise UsageError(f"{name}: a '$' that is not a variable; write $$ for a literal dollar sign")
        unknown = sorted(set(template.get_identifiers()) - set(VARIABLES))
        if unknown:
            raise UsageError(
                f"{name}: unknown variable ${unknown[0]}; the variables are " + ", ".join("$" + v for v in VARIABLES)
            )
        if "record" not in template.get_identifiers():
            raise UsageError(f"{name}: the template never uses $record, so the model would not see the record")
        return template

    def build(self, record: dict, n: int, language: str) -> str:
        template = self.custom or self.defaults.get(language, self.defaults["en"])
        keys = ", ".join(k for k in record if isinstance(k, str))
        return template.substitute(
            n=n,
            record=json.dumps(record, ensure_ascii=False, indent=2),
            format=self.format,
            keys=keys,
            language=LANGUAGE_NAMES.get(language, language),
        )
