"""Models: plain ``torch.nn.Module`` code. Imports torch only (no Lightning, YAML, plotting).

``build_model(cfg.model, src_vocab_size, tgt_vocab_size)`` is the one entry point; every model
follows the output and decoding conventions in ``attnlab.models.outputs``.
"""

from attnlab.models.build import build_model
from attnlab.models.outputs import Seq2SeqOutput, StepOutput
from attnlab.models.summary import format_summary, model_summary

__all__ = ["build_model", "Seq2SeqOutput", "StepOutput", "model_summary", "format_summary"]
