"""Rendering results for people, and nothing else: terminal text and self-contained HTML pages (Jinja2 templates
in `templates/`, chart geometry in `charts`). Analysis happens elsewhere (`training.diagnosis`, `metrics`)."""
