"""`ftbench augment`: grow a small SFT dataset safely.

* `fill` puts values into `{{name}}`-style template slots (identity datasets) and reports what is left.
* `llm` asks an OpenAI-compatible endpoint (or a local model) for N variants of every record, checks each
  generated record with the validator, de-duplicates it, and appends it with provenance to a resumable JSONL.

Modules: `fill` (placeholders), `prompt` (templates), `reply` (JSON out of a model's reply), `http` (the
retrying chat-completions client), `local` (the same through `ftbench.inference.generate`), `gate` (validate +
de-duplicate), `store` (append-only output and resume), `runner` (the work loop and its counts), `job` (one
run as a library call: `run_job(AugmentJob(...))`).
"""
