"""Exporting trained runs for fast inference elsewhere: CTranslate2 (Transformer runs).

``ctranslate2`` (the model spec and :func:`attnlab.export.ctranslate2.export_run`) writes the export.
The export directory and its manifest are described by :mod:`attnlab.decoding.export_layout` (plain
Python, no torch), next to the :class:`attnlab.decoding.translator.Translator` that reads them back
(``backend="ctranslate2"``, see :mod:`attnlab.decoding.ctranslate2_backend`). This file imports nothing,
so importing the package does not load torch.
"""
