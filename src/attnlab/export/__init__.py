"""Exporting trained runs for fast inference elsewhere: CTranslate2 (Transformer runs).

``layout`` (the export directory and its manifest), ``ctranslate2`` (the model spec and
:func:`export_run`). Translating with an export is :class:`attnlab.decoding.translator.Translator`'s
job (``backend="ctranslate2"``, see :mod:`attnlab.decoding.ctranslate2_backend`).
"""

from attnlab.export.ctranslate2 import export_run
from attnlab.export.layout import QUANTIZATIONS, ExportError, is_export_dir

__all__ = ["export_run", "ExportError", "is_export_dir", "QUANTIZATIONS"]
