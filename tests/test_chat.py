"""Prompt rendering shared by training and prediction (ftbench.inference.chat) on the tiny model's ChatML tokenizer: the
prompt ids of predict are exactly the masked prefix of the training ids, every assistant turn is trained, and
truncation and template fallbacks behave as documented."""

from __future__ import annotations

import os
import warnings

import pytest

from ftbench.data.formats import Sample
from ftbench.data.loader import load_samples
from ftbench.inference.chat import (
    IGNORE_INDEX,
    conversation_segments,
    encode_for_training,
    encode_prompt,
    infer_seqlen,
    prompt_text_and_ids,
    render_prompt,
    to_messages,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = ["identity.json", "alpaca_demo.json", "sharegpt_demo.json", "openai_demo.jsonl", "arithmetic_demo.jsonl"]

# Qwen2.5-Instruct's chat template (tool preamble included), to check that a real template is prefix-consistent
QWEN25_TEMPLATE = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}{%- if messages[0]['role'] == 'system' %}"
    "{{- messages[0]['content'] }}{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful "
    'assistant.\' }}{%- endif %}{{- "\\n\\n# Tools\\n\\n<tools>" }}{%- for tool in tools %}{{- "\\n" }}'
    '{{- tool | tojson }}{%- endfor %}{{- "\\n</tools><|im_end|>\\n" }}{%- else %}'
    "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + "
    "'<|im_end|>\\n' }}{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a "
    "helpful assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}"
    "{%- for message in messages %}{%- if (message.role == 'user') or (message.role == 'system' and not "
    "loop.first) or (message.role == 'assistant' and not message.tool_calls) %}{{- '<|im_start|>' + message.role"
    " + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- elif message.role == 'tool' %}{%- if "
    "(loop.index0 == 0) or (messages[loop.index0 - 1].role != 'tool') %}{{- '<|im_start|>user' }}{%- endif %}"
    "{{- '\\n<tool_response>\\n' }}{{- message.content }}{{- '\\n</tool_response>' }}{%- if loop.last or "
    "(messages[loop.index0 + 1].role != 'tool') %}{{- '<|im_end|>\\n' }}{%- endif %}{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
# rewrites earlier answers once later turns exist (as reasoning-model templates do with their thinking)
REWRITING_TEMPLATE = (
    "{% for m in messages %}{% if m.role == 'assistant' and not loop.last %}<a>(earlier answer)</a>"
    "{% else %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture()
def tokenizer(tiny_model):
    from ftbench.inference.models import load_tokenizer

    return load_tokenizer(tiny_model)


def bundled_samples(per_file: int = 12) -> list[Sample]:
    samples = []
    for name in DATA:
        samples += load_samples(os.path.join(REPO, "datasets", name))[:per_file]
    return samples


def sample(*turns, system: str = "") -> Sample:
    return Sample(list(turns), system, "", "test.json", 0, 1)


def trained_text(tokenizer, ids, labels) -> str:
    return tokenizer.decode([i for i, lab in zip(ids, labels) if lab != IGNORE_INDEX], skip_special_tokens=False)


def test_prompt_ids_are_the_masked_prefix_of_the_training_ids(tokenizer):
    singles = [s for s in bundled_samples() if len(s.turns) == 2]
    assert len(singles) >= 40
    for s in singles:
        ids, labels = encode_for_training(tokenizer, s, None)
        first = next(i for i, lab in enumerate(labels) if lab != IGNORE_INDEX)
        assert encode_prompt(tokenizer, s) == ids[:first]
        assert all(lab == IGNORE_INDEX for lab in labels[:first])
        assert labels[first:] == ids[first:]


def test_ids_match_the_chat_template_and_end_of_turn_is_trained(tokenizer):
    for s in bundled_samples():
        ids, labels = encode_for_training(tokenizer, s, None)
        # segment-wise tokenization equals tokenizing the whole rendering for ChatML (cuts sit at special tokens)
        assert ids == tokenizer.apply_chat_template(to_messages(s), return_dict=False)
        text = trained_text(tokenizer, ids, labels)
        answers = [content for role, content in s.turns if role == "assistant"]
        assert text == "".join(f"{a}<|im_end|>\n" for a in answers)


def test_every_assistant_turn_of_a_multi_turn_sample_is_trained(tokenizer):
    s = sample(
        ("user", "你好"),
        ("assistant", "你好！有什么可以帮你？"),
        ("user", "What is 2+2?"),
        ("assistant", "4."),
        system="Be brief.",
    )
    ids, labels = encode_for_training(tokenizer, s, None)
    assert trained_text(tokenizer, ids, labels) == "你好！有什么可以帮你？<|im_end|>\n4.<|im_end|>\n"
    prompt = render_prompt(tokenizer, s)
    assert prompt.startswith("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n")
    assert prompt.endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")
    assert tokenizer.decode(encode_prompt(tokenizer, s), skip_special_tokens=False) == prompt
    assert prompt_text_and_ids(tokenizer, s) == (prompt, encode_prompt(tokenizer, s))


def test_default_system_prompt_and_tool_results(tokenizer):
    tokenizer.chat_template = QWEN25_TEMPLATE
    s = sample(
        ("user", "Weather in Paris?"),
        ("function_call", '{"name": "weather"}'),
        ("observation", "18°C"),
        ("assistant", "It is 18 °C."),
    )
    segments = conversation_segments(tokenizer, s)
    assert [seg.assistant for seg in segments] == [False, True, False, True]
    assert segments[0].text.startswith("<|im_start|>system\nYou are Qwen")
    assert segments[2].text == (
        "<|im_start|>user\n<tool_response>\n18°C\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
    )
    assert segments[3].text == "It is 18 °C.<|im_end|>\n"


def test_truncation_keeps_the_prompt_tail_and_the_answer_head(tokenizer):
    s = load_samples(os.path.join(REPO, "datasets", "alpaca_demo.json"))[0]
    full_ids, full_labels = encode_for_training(tokenizer, s, None)
    prompt = encode_prompt(tokenizer, s)
    answer = full_ids[len(prompt) :]
    for cutoff in (8, 16, len(full_ids) // 2, len(full_ids) - 1):
        ids, labels = encode_for_training(tokenizer, s, cutoff)
        assert len(ids) == len(labels) <= cutoff
        source_len, target_len = infer_seqlen(len(prompt), len(answer), cutoff)
        assert ids == prompt[len(prompt) - source_len :] + answer[:target_len]
        if source_len:  # the assistant header stays right before the answer
            assert tokenizer.decode(ids[:source_len]).endswith("<|im_start|>assistant\n"[-source_len:])
    assert encode_for_training(tokenizer, s, len(full_ids)) == (full_ids, full_labels)
    assert encode_prompt(tokenizer, s, 5) == prompt[-5:]


def test_later_turns_are_dropped_when_the_budget_is_spent(tokenizer):
    s = sample(
        ("user", "first question " * 5),
        ("assistant", "first answer " * 5),
        ("user", "second"),
        ("assistant", "second answer"),
    )
    segments = [
        tokenizer(seg.text, add_special_tokens=False)["input_ids"] for seg in conversation_segments(tokenizer, s)
    ]
    first_pair = len(segments[0]) + len(segments[1])
    ids, labels = encode_for_training(tokenizer, s, first_pair)
    assert ids == segments[0] + segments[1]
    assert "second" not in tokenizer.decode(ids)


def test_infer_seqlen_matches_llamafactory():
    assert infer_seqlen(100, 10, 50) == (40, 10)  # short answer: kept, prompt cut
    assert infer_seqlen(10, 100, 50) == (10, 40)  # short prompt: kept, answer cut
    assert infer_seqlen(60, 40, 50) == (30, 20)  # both long: shares by length
    assert infer_seqlen(5, 5, 50) == (5, 5)


def test_template_that_rewrites_earlier_turns_falls_back_to_the_final_answer(tokenizer):
    tokenizer.chat_template = REWRITING_TEMPLATE
    s = sample(("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ids, labels = encode_for_training(tokenizer, s, None)
    assert any("not prefix-consistent" in str(w.message) for w in caught)
    assert trained_text(tokenizer, ids, labels) == "a2</assistant>"
    assert render_prompt(tokenizer, s) == "<user>q1</user><a>(earlier answer)</a><user>q2</user><assistant>"


def test_tokenizer_without_chat_template_uses_plain_text_and_eos(tokenizer):
    tokenizer.chat_template = None
    s = sample(("user", "hello"), ("assistant", "world"), system="sys")
    ids, labels = encode_for_training(tokenizer, s, None)
    assert tokenizer.decode(encode_prompt(tokenizer, s)) == "sys\nhello\n"
    assert ids[-1] == tokenizer.eos_token_id and labels[-1] == tokenizer.eos_token_id
    assert trained_text(tokenizer, ids, labels) == "world<|im_end|>"
