"""Search through the models' encode/decode_step protocol, and the Translator that wraps a run.

``greedy`` (greedy search, the shared one-token-per-step loop), ``beam`` (batched beam search with
attention carried through the backpointers), ``sampling`` (temperature and top-k), ``translator``
(raw text in, detokenised translations out).
"""
