"""The export directory: what ``attnlab export`` writes and what the Translator reads back.

::

    OUT/
      model.bin config.json                  the CTranslate2 model (written by CTranslate2 itself)
      shared_vocabulary.json                 ... or source_vocabulary.json and target_vocabulary.json
      attnlab_export.json                    the manifest: settings, limits, provenance, scores, checksums
      config.yaml data.json                  the run's resolved config and data description, copied
      src_vocab.json tgt_vocab.json          the run's vocabularies, copied
      [spm_src.model spm_tgt.model]          the run's SentencePiece models, copied
      weights.pt                             attnlab's float32 weights (``--backend torch`` and attention)

The run's own files are copied unchanged, so the run's readers (``load_prepared``, ``load_config``)
read them back and raw text goes through exactly the run's normalisation and tokenisation.
This module only names the files and reads the manifest: it imports neither torch nor CTranslate2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from attnlab.config import ConfigError
from attnlab.rundir import TEXT_PIPELINE_FILES

__all__ = ["ExportError", "MANIFEST", "WEIGHTS", "FORMAT", "FORMAT_VERSION", "RUN_FILES", "QUANTIZATIONS",
           "is_export_dir", "read_manifest"]

MANIFEST = "attnlab_export.json"
WEIGHTS = "weights.pt"
FORMAT = "attnlab-ctranslate2"
FORMAT_VERSION = 1
# Weight types of an export. float16 and bfloat16 are storage types on CPUs without them: CTranslate2
# then computes in float32 (its "default" compute type falls back).
QUANTIZATIONS = ("float32", "int8", "int8_float32", "float16", "bfloat16")
RUN_FILES = TEXT_PIPELINE_FILES  # copied from the run directory when present


class ExportError(ConfigError):
    """A run that cannot be exported, or an export directory that cannot be used; names the path.

    A :class:`ConfigError`, so the command line reports it in one line like any other user error.
    """


def is_export_dir(path: str | Path) -> bool:
    """True when ``path`` is a directory written by ``attnlab export`` (it holds the manifest)."""
    return (Path(path) / MANIFEST).is_file()


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of an export directory, checked for its format and version."""
    path = Path(directory) / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ExportError(f"export manifest {path} is unreadable: {err}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ExportError(f"{path} is not an attnlab export manifest (expected format {FORMAT!r})")
    if manifest.get("version") != FORMAT_VERSION:
        raise ExportError(f"export {directory} has format version {manifest.get('version')}; this attnlab reads "
                          f"version {FORMAT_VERSION}: export the run again")
    return manifest
