"""Outputs of ``compare`` and ``inspect``: terminal (rich), JSON, self-contained HTML, Markdown.

One module per output; none is imported by ``import scratchcheck``, so rich and jinja2 load only
when a report is rendered. Shared wording and numbers live in ``fmt`` and ``narrative``.
"""
