"""Talking to servers: the one HTTP client every server-facing part of ftbench uses (generation engines, LLM
augmentation, judges)."""
