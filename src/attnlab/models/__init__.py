"""Models: plain ``torch.nn.Module`` code. Imports torch only (no Lightning, YAML, plotting).

``attnlab.models.build.build_model(cfg.model, src_vocab_size, tgt_vocab_size)`` is the one entry
point; every model follows the output and decoding conventions in ``attnlab.models.outputs``; the
choices and the rules between them are declared once in ``attnlab.models.options`` (plain Python).
This file imports nothing, so that reading the options does not load torch.
"""
