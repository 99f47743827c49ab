"""Turning a `Sample` into the messages and text a chat model sees (one place, so validate's token counts,
training and prediction render prompts identically)."""

from __future__ import annotations

from ftbench.data.formats import FUNCTION, OBSERVATION, Sample

# chat templates know user/assistant/system/tool; LLaMA-Factory's observation is a tool result
_TEMPLATE_ROLE = {OBSERVATION: "tool", FUNCTION: "assistant"}


def to_messages(sample: Sample) -> list[dict]:
    messages = [{"role": "system", "content": sample.system}] if sample.system else []
    messages.extend({"role": _TEMPLATE_ROLE.get(role, role), "content": content} for role, content in sample.turns)
    return messages


def render_text(tokenizer, sample: Sample) -> str:
    """The whole conversation as text: the tokenizer's chat template if it has one, else plain joined turns."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(to_messages(sample), tokenize=False)
    parts = [sample.system] if sample.system else []
    parts.extend(content for _, content in sample.turns)
    return "\n".join(parts)
