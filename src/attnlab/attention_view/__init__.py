"""The interactive attention view of one sentence: its data, its per-head statistics and its HTML.

Arrays in, HTML out, with numpy and the standard library only (no torch, no matplotlib), so the
results that decoding and evaluation return can show themselves in a notebook without importing
:mod:`attnlab.viz`:

- :mod:`.records`: :class:`~.records.AttentionRecord`, one sentence's tokens and attention arrays;
- :mod:`.stats`: numbers that summarise each head (entropy, diagonal share, ...), CSV and Markdown;
- :mod:`.html`: the view's markup, the self-contained page, and the script and style in ``static/``
  that serve the per-sentence pages, notebooks and the ``attnlab serve`` explorer.
"""
