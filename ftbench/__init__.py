"""ftbench: know whether your fine-tuning data is right, whether training helped, and what it cost."""

__version__ = "0.1.0"
