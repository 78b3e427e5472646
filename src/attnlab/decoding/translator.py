"""The Translator: raw sentences in, detokenised translations (with scores and attention) out.

It applies a run's own pipeline: normalisation -> tokenisation -> vocabulary ids (unknown tokens
become ``<unk>``) -> search -> target tokens -> detokenised text. Inputs are sorted by length into
batches (less padding, fewer wasted steps) and the results put back in input order::

    translator = Translator.from_run("runs/quickstart")
    [result] = translator.translate(["I am cold."], beam=5)
    result.text, result.score
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from attnlab.attention_view.html import render_attention_view
from attnlab.attention_view.records import AttentionRecord
from attnlab.data.normalize import get_normalizer
from attnlab.data.vocab import EOS
from attnlab.decoding.beam import LengthNorm, beam_search
from attnlab.decoding.ctranslate2_backend import (
    CTranslate2Search,
    ExportParts,
    check_backend,
    convert_run_model,
    is_export_dir,
    load_export,
)
from attnlab.decoding.forced import add_forced_attentions
from attnlab.decoding.greedy import Hypothesis, greedy_decode
from attnlab.decoding.loading import load_run
from attnlab.rundir import RunDir

if TYPE_CHECKING:
    from attnlab.config import Config

__all__ = ["Translator", "Translation", "Candidate", "TruncationWarning"]


class TruncationWarning(UserWarning):
    """A source sentence was longer than the model accepts and was cut."""


@dataclass
class Candidate:
    """One translation of a sentence.

    ``tokens``: target tokens (words or subword pieces) without specials; ``text``: detokenised.
    ``score``: summed log-probability (``<eos>`` included); ``normalized_score``: what beam search
    ranked by (None from greedy search). ``complete``: False when cut at the length limit.
    ``cross_attentions``: when asked, one (heads, len(tgt_tokens), len(src_tokens)) tensor per layer.
    ``encoder_attentions`` (heads, len(src_tokens), len(src_tokens)) and ``decoder_attentions``
    (heads, len(tgt_tokens), len(tgt_tokens)): when asked, per layer, from a teacher-forced pass over
    the output (:mod:`attnlab.decoding.forced`); None for models without them (RNNs).
    """

    text: str
    tokens: list[str]
    score: float
    normalized_score: float | None = None
    complete: bool = True
    cross_attentions: tuple[Tensor, ...] | None = None
    encoder_attentions: tuple[Tensor, ...] | None = None
    decoder_attentions: tuple[Tensor, ...] | None = None

    @property
    def tgt_tokens(self) -> list[str]:
        """The labels of the attention rows: the tokens, then ``<eos>`` when the output was complete."""
        return self.tokens + [EOS] if self.complete else list(self.tokens)


@dataclass
class Translation:
    """The result for one input sentence: its n-best list (best first) and how the source was read.

    ``src_tokens``: the source as the model saw it (after normalisation, tokenisation and truncation);
    ``src_ids``: their ids, with unknown tokens as ``<unk>``. The attributes of the best candidate are
    available directly (``text``, ``tokens``, ``score``, ``cross_attentions``, ``tgt_tokens``).
    """

    source: str
    src_tokens: list[str]
    src_ids: list[int]
    n_best: list[Candidate] = field(default_factory=list)
    truncated: bool = False

    @property
    def best(self) -> Candidate:
        return self.n_best[0]

    @property
    def text(self) -> str:
        return self.best.text

    @property
    def tokens(self) -> list[str]:
        return self.best.tokens

    @property
    def score(self) -> float:
        return self.best.score

    @property
    def cross_attentions(self) -> tuple[Tensor, ...] | None:
        return self.best.cross_attentions

    @property
    def encoder_attentions(self) -> tuple[Tensor, ...] | None:
        return self.best.encoder_attentions

    @property
    def decoder_attentions(self) -> tuple[Tensor, ...] | None:
        return self.best.decoder_attentions

    @property
    def tgt_tokens(self) -> list[str]:
        return self.best.tgt_tokens

    def _repr_html_(self) -> str | None:
        """In a notebook, the interactive view of the best candidate's attention, every kind it has (offline).

        Only with ``translate(..., return_attention=True)``; otherwise None, and the plain repr shows.
        """
        if self.cross_attentions is None:
            return None
        kinds = {"encoder": self.encoder_attentions, "decoder": self.decoder_attentions,
                 "cross": self.cross_attentions}
        record = AttentionRecord.from_arrays(self.src_tokens, self.tgt_tokens, kinds,
                                             title=f"{self.source} \u2192 {self.text}")
        return render_attention_view(record)


class Translator:
    """A model with the tokenizers, vocabularies and normalisation it was trained with.

    Source sentences longer than ``max_src_len`` tokens are cut (with a :class:`TruncationWarning`);
    outputs are limited to ``min(ceil(max_len_ratio * source length) + 5, max_len)`` tokens.
    ``length_penalty`` is the alpha beam search ranks with, in ``length_penalty_form`` (``gnmt`` or
    ``power``, see :mod:`attnlab.decoding.beam`); ``cfg`` the run's config (from_run).
    ``fast_search``: the CTranslate2 backend when set (``from_run(..., backend="ctranslate2")``).
    """

    def __init__(self, model: nn.Module, src_tokenizer, tgt_tokenizer, src_vocab, tgt_vocab, normalize: str,
                 max_src_len: int = 100, max_len: int = 100, max_len_ratio: float = 1.5,
                 length_penalty: float = 0.6, limit_reason: str = "", cfg: Config | None = None,
                 length_penalty_form: str = "gnmt") -> None:
        self.fast_search: CTranslate2Search | None = None
        self.length_penalty_form = length_penalty_form
        self.model = model.eval()
        self.cfg = cfg  # the run's resolved config, when loaded with from_run
        self.src_tokenizer, self.tgt_tokenizer = src_tokenizer, tgt_tokenizer
        self.src_vocab, self.tgt_vocab = src_vocab, tgt_vocab
        self.normalize: Callable[[str], str] = get_normalizer(normalize)
        self.max_src_len, self.max_len, self.max_len_ratio = max_src_len, max_len, max_len_ratio
        self.length_penalty = length_penalty
        self.limit_reason = limit_reason or f"max_src_len={max_src_len}"
        self.device = next(model.parameters()).device
        # Where the model came from (set by from_run / an export's loader): evaluations are stored in
        # ``root`` and keyed by the checkpoint file's content.
        self.run: RunDir | None = None
        self.root: Path | None = None
        self.checkpoint: Path | None = None
        self.checkpoint_name = "model"

    @classmethod
    def from_run(cls, run_dir_or_checkpoint: str | Path, checkpoint: str = "best",
                 device: str | torch.device | None = None, backend: str | None = None,
                 compute_type: str = "default", threads: int | None = None) -> Translator:
        """Load a run (``best``, ``last`` or ``init`` weights, or a checkpoint file) and its ``decode`` settings.

        The source limit is ``decode.max_len``, and for the Transformer also ``model.max_positions``
        (its position table ends there), which bounds the output length too.

        ``backend``: ``"torch"`` (the default for a run) or ``"ctranslate2"`` (the default for a
        directory written by ``attnlab export``; a run's Transformer is converted in memory).
        ``compute_type`` (e.g. ``int8``) and ``threads`` (default: torch's) apply to CTranslate2 only.
        """
        check_backend(backend)
        if is_export_dir(run_dir_or_checkpoint):
            return cls._from_export(load_export(run_dir_or_checkpoint, backend or "ctranslate2", device, compute_type,
                                                threads), Path(run_dir_or_checkpoint))
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        loaded = load_run(run_dir_or_checkpoint, checkpoint=checkpoint, device=device)
        decode, model_cfg = loaded.cfg.decode, loaded.cfg.model
        max_len, reason = decode.max_len, f"decode.max_len={decode.max_len}"
        if model_cfg.arch == "transformer" and model_cfg.max_positions < max_len:
            max_len, reason = model_cfg.max_positions, f"model.max_positions={model_cfg.max_positions}"
        translator = cls(loaded.model, loaded.src_tokenizer, loaded.tgt_tokenizer, loaded.src_vocab,
                         loaded.tgt_vocab, loaded.normalize, max_src_len=max_len, max_len=max_len,
                         max_len_ratio=decode.max_len_ratio, length_penalty=decode.length_penalty,
                         limit_reason=reason, cfg=loaded.cfg, length_penalty_form=decode.length_penalty_form)
        translator.run, translator.root, translator.checkpoint = loaded.run, loaded.run.root, loaded.checkpoint
        translator.checkpoint_name = checkpoint if Path(run_dir_or_checkpoint).is_dir() else loaded.checkpoint.name
        if backend == "ctranslate2":
            translator.fast_search = convert_run_model(loaded.model, model_cfg, loaded.src_vocab.itos,
                                                       loaded.tgt_vocab.itos, str(loaded.run.root), compute_type,
                                                       threads, device)
        return translator

    @classmethod
    def _from_export(cls, parts: ExportParts, directory: Path) -> Translator:
        translator = cls(parts.model, parts.src_tokenizer, parts.tgt_tokenizer, parts.src_vocab, parts.tgt_vocab,
                         parts.normalize, cfg=parts.cfg, **parts.settings)
        translator.root, translator.checkpoint, translator.checkpoint_name = directory, parts.checkpoint, \
            parts.checkpoint_name
        translator.fast_search = parts.fast_search
        return translator

    @property
    def backend(self) -> str:
        """``"ctranslate2"`` when CTranslate2 searches, else ``"torch"``."""
        return "torch" if self.fast_search is None else "ctranslate2"

    def read_source(self, sentence: str, line: int) -> Translation:
        """Normalise, tokenise, truncate (warning names ``line``) and encode one raw sentence."""
        text = self.normalize(sentence)
        tokens = self.src_tokenizer.encode(text) if text else []
        truncated = len(tokens) > self.max_src_len
        if truncated:
            warnings.warn(f"line {line}: the source has {len(tokens)} tokens, more than the model's limit "
                          f"({self.limit_reason}); only the first {self.max_src_len} are translated",
                          TruncationWarning, stacklevel=3)
            tokens = tokens[: self.max_src_len]
        return Translation(sentence, tokens, self.src_vocab.encode(tokens), truncated=truncated)

    def translate(self, sentences: Sequence[str], beam: int = 5, n_best: int = 1, return_attention: bool = False,
                  batch_size: int = 64, first_line: int = 1) -> list[Translation]:
        """Translate raw ``sentences``; one :class:`Translation` each, in input order.

        ``beam`` 1 is greedy search (beam search of size 1 gives the same output); ``n_best`` (<=
        ``beam``) candidates are kept per sentence. An empty sentence gets one empty candidate.
        ``first_line`` is the line number of ``sentences[0]`` in truncation warnings.
        """
        if not 1 <= n_best <= beam:
            raise ValueError(f"n_best is {n_best}; it must be between 1 and the beam size ({beam})")
        if batch_size < 1:
            raise ValueError(f"batch_size is {batch_size}; it must be >= 1")
        results = [self.read_source(s, first_line + i) for i, s in enumerate(sentences)]
        for result in results:
            if not result.src_ids:
                result.n_best = [Candidate("", [], 0.0, 0.0, True, None)]
        # longest first: the largest batch comes first, so memory peaks at once rather than late
        order = sorted((i for i, r in enumerate(results) if r.src_ids), key=lambda i: -len(results[i].src_ids))
        for start in range(0, len(order), batch_size):
            chunk = [results[i] for i in order[start: start + batch_size]]
            for result, hypotheses in zip(chunk, self._search(chunk, beam, n_best, return_attention), strict=True):
                result.n_best = [self._candidate(h) for h in hypotheses]
            if return_attention:  # every kind, layer and head; the cross maps too when CTranslate2 searched
                add_forced_attentions(self.model, chunk, self.tgt_vocab, cross=self.fast_search is not None)
        return results

    def _search(self, chunk: list[Translation], beam: int, n_best: int,
                return_attention: bool) -> list[list[Hypothesis]]:
        """Pad the chunk's ids into (B, S) and run the search (or hand the ids to CTranslate2)."""
        if self.fast_search is not None:
            return self.fast_search.search([r.src_ids for r in chunk], beam, n_best,
                                           LengthNorm(self.length_penalty, self.length_penalty_form),
                                           self.max_len_ratio, self.max_len)
        lengths = torch.tensor([len(r.src_ids) for r in chunk])
        src = torch.zeros(len(chunk), int(lengths.max()), dtype=torch.long)  # (B, S), 0 = <pad>
        for row, result in enumerate(chunk):
            src[row, : len(result.src_ids)] = torch.tensor(result.src_ids)
        src, lengths = src.to(self.device), lengths.to(self.device)
        if beam == 1:
            hypotheses = greedy_decode(self.model, src, lengths, self.max_len_ratio, self.max_len, return_attention)
            return [[h] for h in hypotheses]
        return beam_search(self.model, src, lengths, beam, n_best, self.length_penalty, self.max_len_ratio,
                           self.max_len, return_attention, self.length_penalty_form)

    def _candidate(self, hypothesis: Hypothesis) -> Candidate:
        tokens = self.tgt_vocab.decode(hypothesis.tokens)
        attentions = None
        if hypothesis.cross_attentions is not None:
            attentions = tuple(a.cpu() for a in hypothesis.cross_attentions)
        return Candidate(self.tgt_tokenizer.decode(tokens), tokens, hypothesis.score, hypothesis.normalized_score,
                         hypothesis.complete, attentions)
