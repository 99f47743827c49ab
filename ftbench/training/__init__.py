"""What every training backend shares: the LLaMA-Factory YAML (`config`), SFT data and its tokenisation (`data`),
LLaMA-Factory's trainer_log format, checkpoints and the one rule choosing among them, the loss-curve diagnosis,
and loss plots. The backends themselves are in `ftbench.backends`."""
