"""The CTranslate2 backend: the Translator's search run by CTranslate2, for Transformer runs and exports.

The Translator keeps everything about text (normalisation, tokenisation, truncation warnings, length
sorting, detokenisation); only the search moves to CTranslate2, set up to search as attnlab does:

- ``beam_size=1`` is greedy search; ``min_decoding_length=0``; ``<pad>`` and ``<bos>`` suppressed;
  no input truncation by CTranslate2 (the Translator has already cut the source, with its warning).
- attnlab's per-sentence limit, ``min(ceil(ratio * source length) + 5, max_len)`` steps, is
  ``max_decoding_length``, which CTranslate2 takes once per call: sentences are grouped by limit.
- Ranking. ``length_penalty_form="power"`` is CTranslate2's own ``score / tokens ** alpha`` and gives
  the torch backend's translations. CTranslate2 has no GNMT form: with ``"gnmt"`` and alpha > 0 it
  searches without a penalty for ``beam`` finished hypotheses, which are then ranked by GNMT. That
  is close to the torch backend's GNMT search but not the same search (it may stop earlier).
- Scores: CTranslate2 takes its log-softmax after suppressing ``<pad>`` and ``<bos>``, so its scores
  are log-probabilities renormalised without them, a little higher than attnlab's (by the mass the
  model leaves to those two tokens: up to 0.02 per sentence on the small trained model of the tests;
  more on an untrained one, where near-ties in beam search can then be ranked differently).
- Attention: CTranslate2 returns at most one head-averaged cross map; with ``return_attention`` the
  Translator runs attnlab's teacher-forced pass on the output instead (:mod:`attnlab.decoding.forced`).

``ctranslate2`` is imported only when a model is loaded, so the torch backend never needs it.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from attnlab.checkpoints import check_state_dict, model_state
from attnlab.config import load_config
from attnlab.data.vocab import BOS, PAD
from attnlab.decoding.beam import LengthNorm, power_length_penalty
from attnlab.decoding.ctranslate2_spec import check_exportable, require_ctranslate2, save_model, transformer_spec
from attnlab.decoding.export_layout import WEIGHTS, ExportError, is_export_dir, read_manifest
from attnlab.decoding.greedy import Hypothesis, length_limits
from attnlab.rundir import RunDir, RunError

if TYPE_CHECKING:
    from attnlab.config import ModelConfig

__all__ = ["BACKENDS", "CTranslate2Search", "ExportParts", "check_backend", "convert_run_model", "load_export",
           "is_export_dir"]

BACKENDS = ("torch", "ctranslate2")


def check_backend(backend: str | None) -> None:
    if backend is not None and backend not in BACKENDS:
        raise ExportError(f"backend {backend!r} is unknown; use 'torch' or 'ctranslate2'")


class CTranslate2Search:
    """A CTranslate2 model of an attnlab Transformer, searched the way attnlab searches.

    ``engine`` is a ``ctranslate2.Translator`` whose vocabularies are attnlab's, id for id.
    """

    def __init__(self, engine: Any, src_itos: list[str], tgt_itos: list[str]) -> None:
        self.engine = engine
        self.src_itos = src_itos
        self.tgt_stoi = {token: index for index, token in enumerate(tgt_itos)}

    @classmethod
    def load(cls, directory: str | Path, src_itos: list[str], tgt_itos: list[str], compute_type: str = "default",
             threads: int | None = None, device: str = "cpu") -> CTranslate2Search:
        """Load a CTranslate2 model directory. ``compute_type`` may quantise at load time (e.g. ``int8``);
        ``threads`` defaults to torch's intra-op thread count, so one setting governs both backends."""
        ctranslate2 = require_ctranslate2()
        try:
            engine = ctranslate2.Translator(str(directory), device=device, compute_type=compute_type,
                                            inter_threads=1, intra_threads=threads or torch.get_num_threads())
        except (RuntimeError, ValueError, OSError) as err:
            raise ExportError(f"CTranslate2 cannot load the model in {directory}: {err}") from None
        return cls(engine, list(src_itos), list(tgt_itos))

    @classmethod
    def convert(cls, model: nn.Module, model_cfg: ModelConfig, src_itos: list[str], tgt_itos: list[str],
                compute_type: str = "default", threads: int | None = None, device: str = "cpu") -> CTranslate2Search:
        """Convert ``model`` (float32) and load it; the files pass through a temporary directory, which
        CTranslate2 reads whole, so nothing is left on disk."""
        spec = transformer_spec(model, model_cfg, src_itos, tgt_itos)
        with tempfile.TemporaryDirectory(prefix="attnlab-ctranslate2-") as folder:
            save_model(spec, Path(folder), "float32")
            return cls.load(folder, src_itos, tgt_itos, compute_type, threads, device)

    @property
    def compute_type(self) -> str:
        return str(self.engine.compute_type)

    def search(self, src_ids: list[list[int]], beam: int, n_best: int, norm: LengthNorm, max_len_ratio: float,
               max_len: int) -> list[list[Hypothesis]]:
        """Per source (ids, non-empty), up to ``n_best`` hypotheses, best first, as the torch backend's."""
        limits = length_limits(torch.tensor([len(s) for s in src_ids]), max_len_ratio, max_len).tolist()
        groups: dict[int, list[int]] = {}
        for row, limit in enumerate(limits):
            groups.setdefault(limit, []).append(row)
        results: list[list[Hypothesis]] = [[] for _ in src_ids]
        for limit, rows in groups.items():
            sources = [[self.src_itos[i] for i in src_ids[row]] for row in rows]
            outputs = self.engine.translate_batch(sources, **_options(beam, n_best, norm, limit))
            for row, output in zip(rows, outputs, strict=True):
                results[row] = self._hypotheses(output, limit, beam, n_best, norm)
        return results

    def _hypotheses(self, output: Any, limit: int, beam: int, n_best: int, norm: LengthNorm) -> list[Hypothesis]:
        """attnlab hypotheses from one ``TranslationResult``, ranked as attnlab's search ranks with ``norm``."""
        hypotheses = []
        for tokens, score in zip(output.hypotheses, output.scores, strict=True):
            ids = [self.tgt_stoi[token] for token in tokens]
            complete = len(ids) < limit  # a cut output used every step; a complete one needs one for <eos>
            steps = len(ids) + 1 if complete else len(ids)
            if beam == 1:  # greedy: summed log-probability, no ranking
                hypotheses.append(Hypothesis(ids, score, None, complete))
                continue
            log_prob = score
            if norm.form == "power" and norm.alpha > 0:  # CTranslate2 returned score / steps ** alpha
                log_prob = score * power_length_penalty(steps, norm.alpha)
            hypotheses.append(Hypothesis(ids, log_prob, None, complete, log_prob / norm.divisor(steps)))
        if norm.complete_first and beam > 1:  # CTranslate2 ranks cut outputs with complete ones; GNMT does not
            hypotheses.sort(key=lambda h: (h.complete, h.normalized_score), reverse=True)  # stable
        return hypotheses[:n_best]

    def log_probs(self, src_ids: list[list[int]], tgt_ids: list[list[int]]) -> list[list[float]]:
        """Teacher-forced log-probabilities of each target token and of ``<eos>`` (CTranslate2's scoring)."""
        sources = [[self.src_itos[i] for i in ids] for ids in src_ids]
        itos = {index: token for token, index in self.tgt_stoi.items()}
        targets = [[itos[i] for i in ids] for ids in tgt_ids]
        return [list(result.log_probs) for result in self.engine.score_batch(sources, targets)]


def _options(beam: int, n_best: int, norm: LengthNorm, limit: int) -> dict[str, Any]:
    """``translate_batch`` settings reproducing attnlab's search (module docstring)."""
    ranked_here = beam > 1 and norm.alpha > 0  # all ``beam`` finished hypotheses come back and are ranked here
    return {
        "beam_size": beam, "num_hypotheses": beam if ranked_here else n_best,
        "length_penalty": norm.alpha if ranked_here and norm.form == "power" else 0.0,
        "min_decoding_length": 0, "max_decoding_length": limit, "max_input_length": 0,
        "suppress_sequences": [[PAD], [BOS]], "return_scores": True,
    }


def _engine_device(device: str | torch.device | None) -> str:
    return "cuda" if str(device or "cpu").startswith("cuda") else "cpu"


def convert_run_model(model: nn.Module, cfg: ModelConfig, src_itos: list[str], tgt_itos: list[str], where: str,
                      compute_type: str = "default", threads: int | None = None,
                      device: str | torch.device | None = None) -> CTranslate2Search:
    """The CTranslate2 search of a run's Transformer, converted in memory (``--backend ctranslate2`` on a run)."""
    check_exportable(cfg, f"run {where}")
    return CTranslate2Search.convert(model, cfg, src_itos, tgt_itos, compute_type, threads, _engine_device(device))


def _torch_model(directory: Path, cfg: Any, src_size: int, tgt_size: int) -> nn.Module:
    """attnlab's own model from the export's ``weights.pt`` (read with ``weights_only``: no code runs)."""
    from attnlab.models.build import build_model

    model = build_model(cfg.model, src_size, tgt_size)
    path = directory / WEIGHTS
    try:
        state = model_state(path)
        check_state_dict(model, state, path)
    except RunError as err:
        raise ExportError(f"{path} does not hold this export's weights ({err}); export the run again") from None
    model.load_state_dict(state)
    return model


def _translator_settings(manifest: dict[str, Any], directory: Path) -> dict[str, Any]:
    """The Translator's limits and beam ranking, as the run had them when it was exported."""
    try:
        limits, decode = manifest["limits"], manifest["decode"]
        return {"max_src_len": limits["max_src_len"], "max_len": limits["max_len"],
                "max_len_ratio": limits["max_len_ratio"], "limit_reason": limits["limit_reason"],
                "length_penalty": decode["length_penalty"], "length_penalty_form": decode["length_penalty_form"]}
    except (KeyError, TypeError) as err:
        raise ExportError(f"export manifest in {directory} lacks {err}; export the run again") from None


@dataclass
class ExportParts:
    """What a Translator over an export directory is made of (see :meth:`Translator.from_run`)."""

    model: nn.Module
    src_tokenizer: Any
    tgt_tokenizer: Any
    src_vocab: Any
    tgt_vocab: Any
    normalize: str
    cfg: Any
    settings: dict[str, Any]
    checkpoint: Path
    checkpoint_name: str
    fast_search: CTranslate2Search | None


def load_export(directory: str | Path, backend: str = "ctranslate2", device: str | torch.device | None = None,
                compute_type: str = "default", threads: int | None = None) -> ExportParts:
    """An export directory's model, text pipeline, limits and decode settings, and its CTranslate2 search."""
    from attnlab.data.store import load_run_tokenizers  # the export holds the run's own copies

    check_backend(backend)
    directory = Path(directory)
    manifest = read_manifest(directory)
    settings = _translator_settings(manifest, directory)
    cfg = load_config(RunDir(directory).config)  # an export holds the run's text-pipeline files
    src_tok, tgt_tok, src_vocab, tgt_vocab, normalize = load_run_tokenizers(directory)
    model = _torch_model(directory, cfg, len(src_vocab), len(tgt_vocab)).to(device or "cpu")
    fast = None
    if backend == "ctranslate2":
        fast = CTranslate2Search.load(directory, src_vocab.itos, tgt_vocab.itos, compute_type, threads,
                                      _engine_device(device))
    source = manifest.get("source") or {}
    # evaluations are stored in the export and keyed by the weights that searched
    checkpoint = directory / ("model.bin" if backend == "ctranslate2" else WEIGHTS)
    return ExportParts(model, src_tok, tgt_tok, src_vocab, tgt_vocab, normalize, cfg, settings, checkpoint,
                       f"export ({source.get('checkpoint', 'unknown')})", fast)
