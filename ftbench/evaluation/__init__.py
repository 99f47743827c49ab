"""Evaluating models: task YAMLs in lm-eval's format, lm-eval's conventions reproduced for ftbench's engine, the
two evaluation engines (ftbench's, lm-eval's), and the before/after comparison of two prediction sets."""
