"""Turning a `Sample` into the messages, text and token ids a chat model sees: the one place prompts are rendered,
so validate's token counts, training and prediction all see the same thing.

A conversation is cut into *segments* that alternate prompt side (system, user and tool turns, and the template's
markers up to and including the assistant header) and assistant side (an answer and its end-of-turn marker).
The cuts come from rendering prefixes of the conversation with the chat template:

    prompt_k = template(messages[:k], add_generation_prompt=True)   # up to "<|im_start|>assistant\\n"
    full_k   = template(messages[:k + 1])                          # ... + "answer<|im_end|>\\n"

and checking that each rendering extends the previous one ("prefix consistency"). Each segment is tokenized on
its own and the ids are concatenated, as LLaMA-Factory's templates do, so the ids of a prompt are identical
whether it is encoded for training or for prediction.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass

from ftbench.api.errors import InputError
from ftbench.data.formats import FUNCTION, OBSERVATION, Sample
from ftbench.inference.templates import ChatTemplate

IGNORE_INDEX = -100  # label value the loss skips (transformers/LLaMA-Factory convention)

# chat templates know user/assistant/system/tool; LLaMA-Factory's observation is a tool result
_TEMPLATE_ROLE = {OBSERVATION: "tool", FUNCTION: "assistant"}


def to_messages(sample: Sample) -> list[dict]:
    messages = [{"role": "system", "content": sample.system}] if sample.system else []
    messages.extend({"role": _TEMPLATE_ROLE.get(role, role), "content": content} for role, content in sample.turns)
    return messages


def render_conversation(tokenizer, sample: Sample) -> str:
    """The whole conversation as text: the tokenizer's chat template if it has one, else plain joined turns."""
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(to_messages(sample), tokenize=False)
    parts = [sample.system] if sample.system else []
    parts.extend(content for _, content in sample.turns)
    return "\n".join(parts)


@dataclass(frozen=True)
class Segment:
    """A run of text that is either all prompt side (masked in training) or all one assistant answer (trained).

    ``pieces``, when given, say how it is tokenized: strings one by one, ints as token ids (a named template's
    slots, the plain format's eos); otherwise ``text`` is tokenized whole."""

    text: str
    assistant: bool
    pieces: tuple = ()


class TemplateNotPrefixConsistent(Exception):
    """The chat template renders a conversation's prefix differently from the start of the whole conversation."""


def _tools(sample: Sample):
    """The sample's tools as the list of JSON schemas chat templates expect, or None."""
    if not sample.tools:
        return None
    try:
        tools = json.loads(sample.tools)
    except ValueError:
        return None
    return tools if isinstance(tools, list) and tools else None


def _render(tokenizer, messages: list[dict], tools, generation_prompt: bool) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False, add_generation_prompt=generation_prompt)


def _template_segments(tokenizer, sample: Sample) -> list[Segment]:
    """Segments cut at every assistant turn, from prefix renderings; raises TemplateNotPrefixConsistent."""
    messages, tools = to_messages(sample), _tools(sample)
    segments: list[Segment] = []
    done = ""  # the text rendered so far: the conversation up to the end of the previous assistant turn
    for k, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt = _render(tokenizer, messages[:k], tools, True)
        full = _render(tokenizer, messages[: k + 1], tools, False)
        if not prompt.startswith(done) or not full.startswith(prompt):
            raise TemplateNotPrefixConsistent(f"turn {k}")
        segments.append(Segment(prompt[len(done) :], False))
        segments.append(Segment(full[len(prompt) :], True))
        done = full
    return segments


def _final_turn_segments(tokenizer, sample: Sample) -> list[Segment]:
    """Fallback for templates that rewrite earlier turns: one prompt segment and the final answer only."""
    messages, tools = to_messages(sample), _tools(sample)
    prompt = _render(tokenizer, messages[:-1], tools, True)
    full = _render(tokenizer, messages, tools, False)
    if not full.startswith(prompt):
        raise InputError(
            f"{sample.file}: record {sample.record}: the chat template renders the prompt differently "
            "from the start of the whole conversation, so the answer's tokens cannot be located; "
            "use a model whose template is prefix-consistent (e.g. Qwen2.5 ChatML)"
        )
    return [Segment(prompt, False), Segment(full[len(prompt) :], True)]


def _plain_segments(tokenizer, sample: Sample) -> list[Segment]:
    """For tokenizers without a chat template: `system\\n` + `user\\n` prompts, answers followed by eos."""
    eos = (tokenizer.eos_token_id,) if getattr(tokenizer, "eos_token_id", None) is not None else ()
    segments: list[Segment] = []
    pending = f"{sample.system}\n" if sample.system else ""
    for role, content in sample.turns:
        if role in ("assistant", FUNCTION):
            segments.append(Segment(pending, False))
            segments.append(Segment(content, True, (content, *eos) if content else eos))
            pending = ""
        else:
            pending += f"{content}\n"
    return segments


_warned_templates: set[str] = set()


def _named_template_segments(tokenizer, sample: Sample, template: ChatTemplate, oneturn: bool) -> list[Segment]:
    """Segments from a named template's slots (LLaMA-Factory's encoding); ``oneturn``: one prompt segment holding
    the whole history, as LLaMA-Factory's predict builds it."""
    if sample.tools:
        raise InputError(
            f"{sample.file}: record {sample.record}: template '{template.name}' does not render tool "
            "definitions; remove `template:` to use the model's own chat template for tool-use data"
        )
    messages = [("observation" if role == OBSERVATION else role, content) for role, content in sample.turns]
    segments = []
    for source, target in template.pairs(tokenizer, messages, sample.system, oneturn=oneturn):
        segments.append(Segment(_pieces_text(tokenizer, source), False, tuple(source)))
        segments.append(Segment(_pieces_text(tokenizer, target), True, tuple(target)))
    return segments


def _pieces_text(tokenizer, pieces) -> str:
    return "".join(p if isinstance(p, str) else tokenizer.convert_ids_to_tokens(p) for p in pieces)


def conversation_segments(
    tokenizer, sample: Sample, template: ChatTemplate | None = None, *, oneturn: bool = False
) -> list[Segment]:
    """The sample cut into prompt-side and assistant segments (see the module docstring); ends with the final
    assistant answer. ``template``: a named template's encoding instead of the tokenizer's chat template."""
    if template is not None:
        return _named_template_segments(tokenizer, sample, template, oneturn)
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        return _plain_segments(tokenizer, sample)
    try:
        return _template_segments(tokenizer, sample)
    except TemplateNotPrefixConsistent:
        key = str(getattr(tokenizer, "name_or_path", "")) or "the tokenizer"
        if key not in _warned_templates:
            _warned_templates.add(key)
            warnings.warn(
                f"the chat template of {key} is not prefix-consistent (it renders earlier turns "
                "differently once later ones exist): multi-turn samples train on their final answer only",
                stacklevel=2,
            )
        return _final_turn_segments(tokenizer, sample)


def _encode(tokenizer, segment: Segment) -> list[int]:
    if not segment.pieces:
        return list(tokenizer(segment.text, add_special_tokens=False)["input_ids"]) if segment.text else []
    ids: list[int] = []
    for piece in segment.pieces:
        ids += tokenizer(piece, add_special_tokens=False)["input_ids"] if isinstance(piece, str) else [piece]
    return ids


_NO_LIMIT = 10**9  # transformers' "no model_max_length" is 1e30; no model has a billion positions


def context_length(tokenizer) -> int | None:
    """The model's context in tokens: the tokenizer's model_max_length, else the max_position_embeddings of the
    config.json next to it; None if neither says."""
    import os

    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < _NO_LIMIT:
        return limit
    config = os.path.join(str(getattr(tokenizer, "name_or_path", "") or ""), "config.json")
    try:
        with open(config, encoding="utf-8") as fh:
            positions = json.load(fh).get("max_position_embeddings")
    except (OSError, ValueError, AttributeError):
        return None
    return positions if isinstance(positions, int) and 0 < positions < _NO_LIMIT else None


def render_prompt(tokenizer, sample: Sample, template: ChatTemplate | None = None) -> str:
    """The text the model is given at prediction time: everything before the final answer, with the generation
    prompt (e.g. ending in `<|im_start|>assistant\\n`)."""
    return prompt_text_and_ids(tokenizer, sample, template=template)[0]


def encode_prompt(
    tokenizer, sample: Sample, cutoff_len: int | None = None, template: ChatTemplate | None = None
) -> list[int]:
    """The prompt's token ids for generation: the conversation up to and excluding the final assistant turn,
    with the generation prompt, tokenized segment by segment exactly as `encode_for_training` does. With
    ``cutoff_len``, only the last ``cutoff_len`` ids are kept (the generation prompt must stay)."""
    return prompt_text_and_ids(tokenizer, sample, cutoff_len, template)[1]


def prompt_text_and_ids(
    tokenizer, sample: Sample, cutoff_len: int | None = None, template: ChatTemplate | None = None
) -> tuple[str, list[int]]:
    """`render_prompt` and `encode_prompt` in one pass. Under a named template the text is the ids decoded with
    their special tokens, as LLaMA-Factory writes a prediction's prompt; otherwise the rendered text (decoded from
    the ids if they were cut)."""
    segments = conversation_segments(tokenizer, sample, template, oneturn=True)[:-1]
    ids = [i for s in segments for i in _encode(tokenizer, s)]
    if cutoff_len and len(ids) > cutoff_len:
        ids = ids[-cutoff_len:]
        return tokenizer.decode(ids, skip_special_tokens=False), ids
    if template is not None:
        return tokenizer.decode(ids, skip_special_tokens=False), ids
    return "".join(s.text for s in segments), ids


def label_text(tokenizer, sample: Sample, cutoff_len: int | None = None, template: ChatTemplate | None = None) -> str:
    """The reference answer as LLaMA-Factory's predict writes it: the final answer's ids (with the template's
    end-of-turn text, e.g. `<|im_end|>\\n`) decoded without special tokens, so `answer<|im_end|>\\n` reads
    `answer\\n`. With ``cutoff_len``, cut to the share `infer_seqlen` gives it next to the prompt."""
    segments = conversation_segments(tokenizer, sample, template, oneturn=True)
    answer = _encode(tokenizer, segments[-1])
    if template is not None and template.efficient_eos:
        answer.append(template.eos_id(tokenizer))
    if cutoff_len:
        prompt_len = sum(len(_encode(tokenizer, s)) for s in segments[:-1])
        answer = answer[: infer_seqlen(prompt_len, len(answer), cutoff_len)[1]]
    return tokenizer.decode(answer, skip_special_tokens=True)


def infer_seqlen(source_len: int, target_len: int, cutoff_len: int) -> tuple[int, int]:
    """LLaMA-Factory's budget split of one (prompt, answer) pair into ``cutoff_len`` tokens: a short answer is
    kept whole and the prompt shortened; a short prompt is kept whole and the answer shortened; otherwise both
    shrink in proportion to their lengths."""
    if target_len * 2 < cutoff_len:
        max_target_len = cutoff_len
    elif source_len * 2 < cutoff_len:
        max_target_len = cutoff_len - source_len
    else:
        max_target_len = int(cutoff_len * (target_len / (source_len + target_len)))
    new_target_len = min(max_target_len, target_len)
    new_source_len = min(max(cutoff_len - new_target_len, 0), source_len)
    return new_source_len, new_target_len


def encode_for_training(
    tokenizer, sample: Sample, cutoff_len: int | None, template: ChatTemplate | None = None
) -> tuple[list[int], list[int]]:
    """The full conversation's ids and labels for supervised fine-tuning.

    Labels are IGNORE_INDEX (-100) on every prompt-side token (system, user and tool turns, template markers up to
    the assistant header) and equal the ids on every assistant turn, including its end-of-turn marker
    (`<|im_end|>\\n` in ChatML): all assistant turns of a multi-turn sample are trained, as in LLaMA-Factory.

    Truncation to ``cutoff_len`` (None: none) walks the (prompt, answer) pairs in order, as LLaMA-Factory does:
    each pair gets the budget left over by the previous ones, split by `infer_seqlen`; pairs after the budget is
    spent are dropped. Unlike LLaMA-Factory, a shortened prompt keeps its *tail* (so the assistant header stays
    right before the answer) while a shortened answer keeps its head.

    A named ``template`` with `efficient_eos` (GLM-4) ends the sequence with one eos, trained on, as
    LLaMA-Factory does.
    """
    segments = conversation_segments(tokenizer, sample, template)
    final_eos = [template.eos_id(tokenizer)] if template is not None and template.efficient_eos else []
    input_ids: list[int] = []
    labels: list[int] = []
    for i in range(0, len(segments) - 1, 2):
        source, target = _encode(tokenizer, segments[i]), _encode(tokenizer, segments[i + 1])
        if cutoff_len is not None:
            budget = cutoff_len - len(input_ids) - len(final_eos)
            if budget <= 0:
                break
            source_len, target_len = infer_seqlen(len(source), len(target), budget)
            source = source[len(source) - source_len :] if source_len else []
            target = target[:target_len]
        source_labels = [IGNORE_INDEX] * len(source)
        if final_eos and i and source:  # LLaMA-Factory labels a later turn's first token with eos (GLM-4)
            source_labels[0] = final_eos[0]
        input_ids += source + target
        labels += source_labels + target
    return input_ids + final_eos, labels + final_eos


# the last user message inside common chat templates (ChatML/Qwen, Llama 3, Mistral/Llama 2)
_USER_TURN = re.compile(
    r"(?:<\|im_start\|>user\n|<\|start_header_id\|>user<\|end_header_id\|>\n\n|\[INST\])"
    r"(?P<text>(?:(?!<\|im_start\|>user\n|<\|start_header_id\|>user).)*?)"
    r"(?:<\|im_end\|>|<\|eot_id\|>|\[/INST\])(?!.*(?:<\|im_start\|>user|"
    r"<\|start_header_id\|>user|\[INST\]))",
    re.S,
)


def user_text(prompt: str) -> str:
    """What the user asked, for people to read: the last user message of a chat-template prompt (the prompt
    itself when no known template is recognised)."""
    m = _USER_TURN.search(prompt)
    return m.group("text").strip() if m else prompt
