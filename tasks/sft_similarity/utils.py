"""lm-eval hook for the sft_similarity task: LLaMA-Factory's per-sample bleu-4 / rouge-1/2/l via ftbench."""

from ftbench.metrics.llamafactory import score_pair
from ftbench.metrics.segment import segmenter


def process_results(doc, results):
    """One generation against the record's `output`, as LLaMA-Factory's ComputeSimilarity scores it."""
    bleu4, rouge1, rouge2, rouge_l = score_pair(results[0], doc["output"], segmenter().cut)
    return {"bleu-4": bleu4, "rouge-1": rouge1, "rouge-2": rouge2, "rouge-l": rouge_l}
