"""How likely a model finds given answers: the negative log-likelihood of each answer's tokens after its prompt,
in one forward pass per batch (teacher forcing, no generation). The retention drift scorer asks it how far a
fine-tune moved the model from its own answers.
"""

from __future__ import annotations

from typing import Sequence


def answer_nll(model, tokenizer, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 8) -> list[tuple]:
    """Per (prompt, answer): (summed NLL of the answer's tokens in nats, their count). ``prompts`` are rendered
    as the model was asked (its chat template applied), tokenized without special tokens as generation does;
    each answer is tokenized on its own and follows its prompt. Rows are right-padded, so padding never shifts a
    row's positions; a beginning all prompts share (the chat template's system prompt) is computed once
    (`kv_cache.SharedPrefix`). An empty answer is (0.0, 0)."""
    import torch

    from ftbench.inference.kv_cache import SharedPrefix, forward_kwargs, shared_prefix_length

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    encoded = [
        (tokenizer(p, add_special_tokens=False)["input_ids"], tokenizer(a, add_special_tokens=False)["input_ids"])
        for p, a in zip(prompts, answers)
    ]
    order = sorted(range(len(encoded)), key=lambda i: -sum(map(len, encoded[i])))  # similar lengths together
    with_prompt = [prompt for prompt, answer in encoded if prompt and answer]
    shared = shared_prefix_length(with_prompt)
    with torch.inference_mode():
        prefix = SharedPrefix(model, with_prompt[0][:shared]) if shared else None
    results: dict[int, tuple] = {}
    for start in range(0, len(order), batch_size):
        batch = [i for i in order[start : start + batch_size] if encoded[i][0] and encoded[i][1]]
        results.update((i, (0.0, 0)) for i in order[start : start + batch_size] if i not in batch)
        if not batch:
            continue
        rows = [encoded[i][0][shared:] + encoded[i][1] for i in batch]
        width = max(map(len, rows))
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        scored = torch.zeros((len(rows), width), dtype=torch.bool)  # positions whose next token is an answer's
        for r, i in enumerate(batch):
            own, answer = len(encoded[i][0]) - shared, encoded[i][1]
            ids[r, : len(rows[r])] = torch.tensor(rows[r], dtype=torch.long)
            mask[r, : len(rows[r])] = 1
            scored[r, own - 1 : own + len(answer) - 1] = True
        mask = torch.cat([mask.new_ones((len(rows), shared)), mask], dim=1)
        positions = torch.arange(shared, shared + width).expand(len(rows), -1)
        cache = prefix.cache(len(rows)) if prefix is not None else None
        with torch.inference_mode():
            # the output layer only where an answer token is predicted (not over the prompts), where the model
            # takes a position mask; the logits at position t predict token t + 1
            kwargs = forward_kwargs(model, cache, scored.to(device))
            logits = model(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=cache is not None,
                **kwargs,
            ).logits
            if "logits_to_keep" not in kwargs:
                logits = logits[scored.to(device)]
        offset = 0
        for i in batch:
            answer = encoded[i][1]
            span = logits[offset : offset + len(answer)].float()
            offset += len(answer)
            target = torch.tensor(answer, device=span.device)
            nll = torch.nn.functional.cross_entropy(span, target, reduction="sum")
            results[i] = (float(nll), len(answer))
        del logits
    return [results[i] for i in range(len(encoded))]
