"""Rendering results for people: terminal text and self-contained HTML pages."""
