"""Recipes: whole workflows, each one readable file (torchtune-style)."""
