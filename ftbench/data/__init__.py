"""Reading data files: raw JSON records with located syntax findings, SFT formats (alpaca, sharegpt, OpenAI),
LLaMA-Factory's dataset_info.json registry, prediction files (read and written), and the bundled datasets."""
