"""Interfaces shared by every ftbench command: findings, errors, and (later) backends and metrics."""
