"""The named templates ftbench knows, copied slot for slot from LLaMA-Factory 0.9.5's `data/template.py` (names,
default system prompts and stop words as there): the families people LoRA-tune small chat models from.
`tests/test_templates.py` checks every one against LLaMA-Factory's own encoder."""

from __future__ import annotations

from ftbench.inference.templates.template import BOS, EOS, ChatTemplate

_CHATML_USER = ("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n",)
_CHATML_ASSISTANT = ("{{content}}<|im_end|>\n",)
_CHATML_SYSTEM = ("<|im_start|>system\n{{content}}<|im_end|>\n",)
_QWEN_OBSERVATION = (
    "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n<|im_start|>assistant\n",
)
_LLAMA3_USER = (
    "<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
    "<|start_header_id|>assistant<|end_header_id|>\n\n",
)
_DEEPSEEK3_USER = ("<｜User｜>{{content}}<｜Assistant｜>",)
_DEFAULT_ASSISTANT = ("{{content}}", EOS)  # LLaMA-Factory's default assistant slot


def _qwen(name: str, default_system: str = "", reasoning: bool = False, description: str = "") -> ChatTemplate:
    return ChatTemplate(
        name,
        _CHATML_USER,
        _CHATML_ASSISTANT,
        _CHATML_SYSTEM,
        _QWEN_OBSERVATION,
        default_system=default_system,
        stop_words=("<|im_end|>",),
        replace_eos=True,
        reasoning=reasoning,
        description=description,
    )


_ALL = [
    _qwen(
        "qwen",
        "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.",
        description="Qwen1.5/2/2.5 chat and instruct models (ChatML with Qwen's default system prompt)",
    ),
    _qwen("qwen3", reasoning=True, description="Qwen3 (thinking): answers carry a <think> block"),
    _qwen("qwen3_nothink", description="Qwen3 instruct models without thinking (e.g. Qwen3-*-Instruct-2507)"),
    ChatTemplate(
        "chatml",
        _CHATML_USER,
        _CHATML_ASSISTANT,
        _CHATML_SYSTEM,
        ("<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n",),
        stop_words=("<|im_end|>", "<|im_start|>"),
        replace_eos=True,
        description="plain ChatML, no default system prompt",
    ),
    ChatTemplate(
        "smollm",
        _CHATML_USER,
        _CHATML_ASSISTANT,
        _CHATML_SYSTEM,
        _CHATML_USER,
        stop_words=("<|im_end|>",),
        description="SmolLM (ChatML)",
    ),
    ChatTemplate(
        "smollm2",
        _CHATML_USER,
        _CHATML_ASSISTANT,
        _CHATML_SYSTEM,
        _CHATML_USER,
        default_system="You are a helpful AI assistant named SmolLM, trained by Hugging Face.",
        stop_words=("<|im_end|>",),
        description="SmolLM2 (ChatML with SmolLM's default system prompt)",
    ),
    ChatTemplate(
        "yi",
        _CHATML_USER,
        _CHATML_ASSISTANT,
        _CHATML_SYSTEM,
        _CHATML_USER,
        stop_words=("<|im_end|>",),
        description="Yi chat models (ChatML)",
    ),
    ChatTemplate(
        "llama3",
        _LLAMA3_USER,
        ("{{content}}<|eot_id|>",),
        ("<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>",),
        (
            "<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n",
        ),
        prefix=(BOS,),
        stop_words=("<|eot_id|>", "<|eom_id|>"),
        replace_eos=True,
        description="Llama 3 / 3.1 / 3.2 instruct",
    ),
    ChatTemplate(
        "llama2",
        (BOS, "[INST] {{content}} [/INST]"),
        _DEFAULT_ASSISTANT,
        ("<<SYS>>\n{{content}}\n<</SYS>>\n\n",),
        (BOS, "[INST] {{content}} [/INST]"),
        fuse_system=True,
        description="Llama 2 chat (system fused into the first user message)",
    ),
    ChatTemplate(
        "mistral",
        ("[INST] {{content}}[/INST]",),
        (" {{content}}", EOS),
        ("{{content}}\n\n",),
        ('[TOOL_RESULTS] {"content": {{content}}}[/TOOL_RESULTS]',),
        prefix=(BOS,),
        fuse_system=True,
        description="Mistral instruct",
    ),
    ChatTemplate(
        "gemma",
        ("<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n",),
        ("{{content}}<end_of_turn>\n",),
        ("{{content}}\n\n",),
        ("<start_of_turn>tool\n{{content}}<end_of_turn>\n<start_of_turn>model\n",),
        prefix=(BOS,),
        stop_words=("<end_of_turn>",),
        replace_eos=True,
        fuse_system=True,
        description="Gemma / Gemma 2 instruct",
    ),
    ChatTemplate(
        "deepseekr1",
        _DEEPSEEK3_USER,
        _DEFAULT_ASSISTANT,
        ("{{content}}",),
        _DEEPSEEK3_USER,
        prefix=(BOS,),
        reasoning=True,
        description="DeepSeek-R1 and the DeepSeek-R1-Distill-Qwen/Llama models (thinking)",
    ),
    ChatTemplate(
        "deepseek3",
        _DEEPSEEK3_USER,
        _DEFAULT_ASSISTANT,
        ("{{content}}",),
        _DEEPSEEK3_USER,
        prefix=(BOS,),
        description="DeepSeek-V3 chat",
    ),
    ChatTemplate(
        "glm4",
        ("<|user|>\n{{content}}<|assistant|>",),
        ("\n{{content}}",),
        ("<|system|>\n{{content}}",),
        ("<|observation|>\n{{content}}<|assistant|>",),
        prefix=("[gMASK]<sop>",),
        stop_words=("<|user|>", "<|observation|>"),
        efficient_eos=True,
        description="GLM-4 chat",
    ),
    ChatTemplate(
        "phi4",
        ("<|im_start|>user<|im_sep|>{{content}}<|im_end|><|im_start|>assistant<|im_sep|>",),
        ("{{content}}<|im_end|>",),
        ("<|im_start|>system<|im_sep|>{{content}}<|im_end|>",),
        ("<|im_start|>user<|im_sep|>{{content}}<|im_end|><|im_start|>assistant<|im_sep|>",),
        stop_words=("<|im_end|>",),
        replace_eos=True,
        description="Phi-4",
    ),
    ChatTemplate(
        "alpaca",
        ("### Instruction:\n{{content}}\n\n### Response:\n",),
        ("{{content}}", EOS, "\n\n"),
        ("{{content}}",),
        ("### Instruction:\n{{content}}\n\n### Response:\n",),
        default_system="Below is an instruction that describes a task. Write a response that "
        "appropriately completes the request.\n\n",
        description="Stanford Alpaca's instruction format",
    ),
    ChatTemplate(
        "vicuna",
        ("USER: {{content}} ASSISTANT:",),
        _DEFAULT_ASSISTANT,
        ("{{content}}",),
        ("USER: {{content}} ASSISTANT:",),
        default_system="A chat between a curious user and an artificial intelligence assistant. The "
        "assistant gives helpful, detailed, and polite answers to the user's questions.",
        description="Vicuna",
    ),
    ChatTemplate(
        "default",
        ("Human: {{content}}", EOS, "\nAssistant:"),
        ("{{content}}", EOS, "\n"),
        ("System: {{content}}", EOS, "\n"),
        ("Human: {{content}}", EOS, "\nAssistant:"),
        description="LLaMA-Factory's generic Human:/Assistant: format",
    ),
    ChatTemplate(
        "empty",
        ("{{content}}",),
        ("{{content}}",),
        ("{{content}}",),
        ("{{content}}",),
        description="the bare text, no markers and no end token",
    ),
]

BUILT_IN: dict[str, ChatTemplate] = {t.name: t for t in _ALL}
