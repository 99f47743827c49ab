"""Reading SFT data: files, formats, LLaMA-Factory dataset_info.json."""
