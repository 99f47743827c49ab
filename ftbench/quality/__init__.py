"""Checking SFT data before training: `validate` (the library call behind `ftbench validate`), per-record and
whole-dataset checks (duplicates, placeholders, broken text, lengths, overlap), MinHash near-duplicates."""
