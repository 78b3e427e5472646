"""attnlab: a workbench for neural machine translation with seq2seq models, attention and the Transformer."""

__version__ = "0.1.0"
