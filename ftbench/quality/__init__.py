"""Quality checks on SFT data: duplicates, placeholders, broken text, lengths, overlap."""
