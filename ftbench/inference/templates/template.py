"""A named chat template as LLaMA-Factory defines one (`data/template.py`): slots for each role, a default system
prompt, stop words, and how the end of an answer is marked. Encoding follows LLaMA-Factory exactly — each string
element of a slot is tokenized on its own, `{"eos_token"}`-style markers become ids — so the token ids, labels and
prompts ftbench produces under `template: qwen` are the ones LLaMA-Factory trains and predicts on.

What differs from LLaMA-Factory by design: the tokenizer is never modified. Where LLaMA-Factory replaces the
tokenizer's eos with the template's first stop word (`replace_eos`), the eos id is computed here instead.
Tool definitions and function-call turns are not rendered by named templates (LLaMA-Factory has one tool format
per model family); such samples are refused with a message naming the way out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Union

from ftbench.api.errors import InputError, UsageError


@dataclass(frozen=True)
class SpecialToken:
    """A slot element that stands for one token: the tokenizer's ``bos``/``eos`` (skipped when the tokenizer has
    none, as in LLaMA-Factory) or a token named by its text."""

    name: str  # "bos", "eos", or a token's text

    def __repr__(self) -> str:
        return f"<{self.name}>"


BOS, EOS = SpecialToken("bos"), SpecialToken("eos")
Slot = tuple[Union[str, SpecialToken], ...]  # strings may hold {{content}} (filled once) and {{idx}}


@dataclass(frozen=True)
class ChatTemplate:
    """One chat format: how each role's message, the system prompt and the start of a conversation are written.

    ``efficient_eos``: the assistant slot has no end marker; one eos ends the whole sequence (GLM-4).
    ``replace_eos``: the template's first stop word is the eos (LLaMA-Factory swaps the tokenizer's eos for it).
    ``fuse_system``: the system text is put in front of the first user message (Llama 2, Mistral, Gemma).
    ``reasoning``: answers carry a `<think>` block; one without gets an empty block, in the answer when
    ``enable_thinking`` (trained on) or at the end of the prompt otherwise.
    """

    name: str
    user: Slot
    assistant: Slot
    system: Slot
    observation: Slot
    prefix: Slot = ()
    default_system: str = ""
    stop_words: tuple[str, ...] = ()
    efficient_eos: bool = False
    replace_eos: bool = False
    fuse_system: bool = False
    reasoning: bool = False
    enable_thinking: bool | None = True
    thought_words: tuple[str, str] = ("<think>\n", "\n</think>\n\n")
    description: str = ""

    def configured(self, default_system: str | None = None, enable_thinking: bool | None = True) -> "ChatTemplate":
        """This template with a config's ``default_system`` (None keeps the template's; "" removes it) and
        ``enable_thinking`` (reasoning templates only)."""
        changes = {"enable_thinking": enable_thinking if self.reasoning else self.enable_thinking}
        if default_system is not None:
            changes["default_system"] = default_system
        return replace(self, **changes)

    # --- ids ---------------------------------------------------------------------------------------------
    def eos_id(self, tokenizer) -> int:
        """The id that ends an answer under this template (the first stop word when ``replace_eos``)."""
        if self.replace_eos:
            return self._token_id(tokenizer, self.stop_words[0])
        if tokenizer.eos_token_id is None:
            raise UsageError(
                f"template '{self.name}' ends answers with the tokenizer's eos token, and this "
                "tokenizer has none; choose a template with its own end marker (e.g. chatml)"
            )
        return tokenizer.eos_token_id

    def stop_ids(self, tokenizer) -> list[int]:
        """Every id that ends generation, as LLaMA-Factory's predict sets them: the eos, the stop words and the
        tokenizer's extra special tokens."""
        ids = [self.eos_id(tokenizer)]
        ids += [self._token_id(tokenizer, word) for word in self.stop_words]
        extra = getattr(tokenizer, "additional_special_tokens_ids", None)
        if not isinstance(extra, list):
            names = [str(t) for t in getattr(tokenizer, "_extra_special_tokens", [])]
            extra = tokenizer.convert_tokens_to_ids(names) if names else []
        ids += [i for i in extra if isinstance(i, int) and i >= 0]
        return list(dict.fromkeys(ids))

    def _token_id(self, tokenizer, token: str) -> int:
        token_id = tokenizer.convert_tokens_to_ids(token)
        if token_id is None or token_id == tokenizer.unk_token_id and token != tokenizer.unk_token:
            raise UsageError(
                f"template '{self.name}' needs the token {token!r}, which this tokenizer does not have "
                "(LLaMA-Factory would add it and need resize_vocab); choose the template made for this "
                "model"
            )
        return token_id

    def _pieces(self, tokenizer, slot: Slot, **values: str) -> list:
        """A slot filled in: strings (tokenized one by one) and token ids."""
        pieces: list = []
        for element in slot:
            if isinstance(element, str):
                for key, value in values.items():
                    element = element.replace("{{" + key + "}}", value, 1)
                if element:
                    pieces.append(element)
            elif element is BOS or element is EOS:
                token_id = tokenizer.bos_token_id if element is BOS else self.eos_id(tokenizer)
                if token_id is not None:
                    pieces.append(token_id)
            else:
                pieces.append(self._token_id(tokenizer, element.name))
        return pieces

    # --- messages ----------------------------------------------------------------------------------------
    def message_pieces(self, tokenizer, messages: list[tuple[str, str]], system: str) -> list[list]:
        """LLaMA-Factory's `Template._encode`: one list of pieces per message; the first carries the prefix and
        the system prompt (the sample's, else the default one)."""
        system = system or self.default_system
        encoded = []
        for i, (role, content) in enumerate(messages):
            pieces: list = []
            system_text = ""
            if i == 0:
                pieces += self._pieces(tokenizer, self.prefix)
                if system and self.fuse_system:
                    system_text = "".join(
                        p for p in self._pieces(tokenizer, self.system, content=system) if isinstance(p, str)
                    )
                elif system:
                    pieces += self._pieces(tokenizer, self.system, content=system)
            if role == "user":
                pieces += self._pieces(tokenizer, self.user, content=system_text + content, idx=str(i // 2))
            elif role == "assistant":
                pieces += self._pieces(tokenizer, self.assistant, content=content)
            elif role == "observation":
                pieces += self._pieces(tokenizer, self.observation, content=content)
            else:
                raise InputError(
                    f"template '{self.name}' does not render {role} turns (tool calls); remove "
                    "`template:` to use the model's own chat template for tool-use data"
                )
            encoded.append(pieces)
        return encoded

    def remove_thought(self, content: str) -> str:
        start, end = (re.escape(w) for w in self.thought_words)
        return re.sub(f"{start}(.*?){end}", "", content, flags=re.DOTALL).lstrip("\n")

    def _has_thought(self, content: str) -> bool:
        return self.thought_words[0].strip() in content or self.thought_words[1].strip() in content

    def pairs(
        self, tokenizer, messages: list[tuple[str, str]], system: str, *, oneturn: bool = False
    ) -> list[tuple[list, list]]:
        """(prompt pieces, answer pieces) per assistant turn, LLaMA-Factory's `encode_multiturn`; with ``oneturn``
        a single pair whose prompt is the whole history (its `encode_oneturn`, used for prediction)."""
        messages = list(messages)
        if self.reasoning:
            messages = self._reasoning_messages(messages, oneturn)
        encoded = self.message_pieces(tokenizer, messages, system)
        pairs = [(encoded[i], encoded[i + 1]) for i in range(0, len(encoded), 2)]
        if oneturn:
            pairs = [([p for source, target in pairs[:-1] for p in source + target] + pairs[-1][0], pairs[-1][1])]
        if self.reasoning:
            answers = [messages[-1][1]] if oneturn else [content for _, content in messages[1::2]]
            empty = self.thought_words[0] + self.thought_words[1]
            for (source, target), answer in zip(pairs, answers):
                if not self._has_thought(answer):
                    if self.enable_thinking:
                        target.insert(0, empty)  # trained on
                    else:
                        source.append(empty)
        return pairs

    def _reasoning_messages(self, messages: list[tuple[str, str]], oneturn: bool) -> list[tuple[str, str]]:
        """Thoughts removed where LLaMA-Factory removes them: every answer when thinking is off; the history's
        answers at prediction time."""
        out = []
        for i, (role, content) in enumerate(messages):
            last = i == len(messages) - 1
            if role == "assistant" and (self.enable_thinking is False or (oneturn and not last)):
                content = self.remove_thought(content)
            out.append((role, content))
        return out
