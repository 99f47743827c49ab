"""How likely a model finds given answers: the negative log-likelihood of each answer's tokens after its prompt,
in one forward pass per batch (teacher forcing, no generation). The retention drift scorer asks it how far a
fine-tune moved the model from its own answers.
"""

from __future__ import annotations

from typing import Sequence

from ftbench.inference.models import forward_takes


def answer_nll(model, tokenizer, prompts: Sequence[str], answers: Sequence[str], batch_size: int = 8) -> list[tuple]:
    """Per (prompt, answer): (summed NLL of the answer's tokens in nats, their count). ``prompts`` are rendered
    as the model was asked (its chat template applied), tokenized without special tokens as generation does;
    each answer is tokenized on its own and follows its prompt. Rows are right-padded, so padding never shifts a
    row's positions; an empty answer is (0.0, 0)."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id or 0
    encoded = [
        (tokenizer(p, add_special_tokens=False)["input_ids"], tokenizer(a, add_special_tokens=False)["input_ids"])
        for p, a in zip(prompts, answers)
    ]
    order = sorted(range(len(encoded)), key=lambda i: -sum(map(len, encoded[i])))  # similar lengths together
    results: dict[int, tuple] = {}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        rows = [encoded[i][0] + encoded[i][1] for i in batch]
        width = max(1, max(map(len, rows)))
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        scored = torch.zeros((len(rows), width), dtype=torch.bool)  # positions whose next token is an answer's
        for r, i in enumerate(batch):
            prompt, answer = encoded[i]
            ids[r, : len(rows[r])] = torch.tensor(rows[r], dtype=torch.long)
            mask[r, : len(rows[r])] = 1
            if prompt and answer:
                scored[r, len(prompt) - 1 : len(prompt) + len(answer) - 1] = True
        with torch.inference_mode():
            # the output layer only where an answer token is predicted (not over the prompts), where the model
            # takes a position mask; the logits at position t predict token t + 1
            keep = {"logits_to_keep": scored.to(device)} if forward_takes(model, "logits_to_keep") else {}
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), **keep).logits
            if not keep:
                logits = logits[scored.to(device)]
        offset = 0
        for i in batch:
            prompt, answer = encoded[i]
            if not answer or not prompt:
                results[i] = (0.0, 0)
                continue
            span = logits[offset : offset + len(answer)].float()
            offset += len(answer)
            target = torch.tensor(answer, device=span.device)
            nll = torch.nn.functional.cross_entropy(span, target, reduction="sum")
            results[i] = (float(nll), len(answer))
        del logits
    return [results[i] for i in range(len(encoded))]
