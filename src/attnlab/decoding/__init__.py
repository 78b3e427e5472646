"""Search through the models' encode/decode_step protocol, and the Translator that wraps a run.

``greedy`` (greedy search, the shared one-token-per-step loop), ``beam`` (batched beam search with
attention carried through the backpointers), ``sampling`` (temperature and top-k), ``forced``
(every attention map of a finished output, by teacher forcing), ``loading`` (a trained run's config,
tokenizers, vocabularies and checkpoint weights), ``translator`` (raw text in, detokenised
translations out), and the CTranslate2 backend: ``ctranslate2_spec`` (an attnlab Transformer as a
CTranslate2 model), ``ctranslate2_backend`` (the Translator's search run by CTranslate2) and
``export_layout`` (the export directory and its manifest, which ``attnlab export`` writes).
"""
