"""Resolving model names: hub ids, local paths, and the built-in offline `tiny` model."""

from __future__ import annotations


def load_tokenizer(name_or_path: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name_or_path)
