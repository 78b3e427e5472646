"""Exporting trained runs for fast inference elsewhere: CTranslate2 (Transformer runs).

``layout`` (the export directory and its manifest; plain Python), ``ctranslate2`` (the model spec and
:func:`attnlab.export.ctranslate2.export_run`). Translating with an export is
:class:`attnlab.decoding.translator.Translator`'s job (``backend="ctranslate2"``, see
:mod:`attnlab.decoding.ctranslate2_backend`). This file imports nothing, so reading the layout does
not load torch.
"""
