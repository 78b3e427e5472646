"""Beam search, batched over sentences and beams, with every layer's cross-attention carried along.

The ``A`` sentences still being searched and their ``K`` beams are flattened to ``A * K`` rows, so a
step is one ``decode_step`` call whatever the batch. Each step:

1. scores every extension of every open hypothesis: ``(A, K * V)`` candidates, ranked by summed
   log-probability (all candidates of a sentence have the same length, so no length penalty is needed
   to rank them);
2. keeps the best ``2K`` candidates: an ``<eos>`` ranked among the first ``K`` finishes a hypothesis;
   the best ``K`` others stay open (at most ``K`` candidates are ``<eos>``, so there are always ``K``);
3. follows the backpointers: the model state (for the Transformer its key/value cache), the token
   history and the attention history are all reordered with the same row index;
4. drops the sentences that are done, so the next step only computes what is still searched.

A sentence is done when it has ``K`` finished hypotheses and no open one can beat the ``K``-th of
them, or when it reaches its length limit (then its open hypotheses are kept as *cut* hypotheses,
``complete=False``). Finished hypotheses are ranked by the GNMT length-normalised score
``log P / ((5 + steps) / 6) ** alpha`` (Wu et al. 2016), complete ones before cut ones.

The other ranking (``length_penalty_form="power"``) is CTranslate2's: ``log P / steps ** alpha``
(``steps`` counts the ``<eos>``, as CTranslate2 does). With it the search follows CTranslate2's rules
throughout, so both backends find the same translations: with ``alpha > 0`` a sentence stops once
``K`` hypotheses have finished; at the length limit only the first ``K`` candidates are kept, and
cut hypotheses are ranked together with complete ones (at ``alpha = 0`` that is the only difference).
GNMT's stays the default: every result attnlab has published was searched with it, and its divisor
grows slowly, so the alpha tuned for it (0.6) keeps its meaning; the power form needs its own alpha
(at 0.6 and 11 steps GNMT divides by 1.80, the power form by 4.22).

"No open one can beat" compares the best open hypothesis as if it ended now. With ``alpha = 0`` this
is exact: log-probabilities only fall as a hypothesis grows. With ``alpha > 0`` a longer continuation
could still overtake; like GNMT and Hugging Face we accept that estimate, which also makes beam
size 1 give exactly the greedy output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlab.data.vocab import BOS_ID, EOS_ID
from attnlab.decoding.greedy import UNPRODUCIBLE, Hypothesis, check_sources, length_limits
from attnlab.models.outputs import DecoderState

__all__ = ["beam_search", "gnmt_length_penalty", "power_length_penalty", "LengthNorm", "LENGTH_PENALTY_FORMS"]

Attentions = tuple[Tensor, ...]  # one tensor per layer


def gnmt_length_penalty(steps: int, alpha: float) -> float:
    """GNMT's ``((5 + steps) / 6) ** alpha``; 1.0 when ``alpha`` is 0 (rank by log-probability)."""
    return ((5.0 + steps) / 6.0) ** alpha


def power_length_penalty(steps: int, alpha: float) -> float:
    """CTranslate2's ``steps ** alpha`` (``<eos>`` counted); 1.0 when ``alpha`` is 0."""
    return float(steps) ** alpha


LENGTH_PENALTY_FORMS = ("gnmt", "power")


@dataclass(frozen=True)
class LengthNorm:
    """How finished hypotheses are ranked, ``score / divisor``, and when a sentence's search stops."""

    alpha: float = 0.0
    form: str = "gnmt"

    def divisor(self, steps: int) -> float:
        """For a hypothesis of ``steps`` decoding steps (its tokens, and ``<eos>`` when it has one)."""
        if self.form == "power":
            return power_length_penalty(steps, self.alpha)
        return gnmt_length_penalty(steps, self.alpha)

    @property
    def complete_first(self) -> bool:
        """attnlab's ranking puts complete hypotheses before cut ones; CTranslate2's ranks them together."""
        return self.form == "gnmt"

    @property
    def stops_at_k_finished(self) -> bool:
        """CTranslate2's stopping rule (power form, alpha > 0) rather than "no open one can beat the K-th"."""
        return self.form == "power" and self.alpha > 0


@dataclass
class _Finished:
    """Hypotheses that ended at one step. ``N`` of them, of ``steps`` decoding steps each."""

    sentences: Tensor  # (N,) index of the sentence in the input batch
    tokens: Tensor  # (N, L) ids without <eos>
    scores: Tensor  # (N,) summed log-probability
    normalized: Tensor  # (N,) scores / length penalty
    attentions: Attentions | None  # per layer (N, heads, steps, S)
    complete: bool


@dataclass
class _Beams:
    """The open hypotheses of the ``A`` sentences still searched; hypothesis rows are ``A * K``."""

    sentences: Tensor  # (A,) index in the input batch
    limits: Tensor  # (A,) length limit in steps
    scores: Tensor  # (A, K) summed log-probabilities
    kth_best: Tensor  # (A, K) normalised scores of the best K complete hypotheses so far (-inf: none)
    n_finished: Tensor  # (A,) complete hypotheses so far
    tokens: Tensor  # (A * K, t) the t tokens emitted so far
    attentions: Attentions | None  # per layer (A * K, heads, t, S)
    state: DecoderState  # the model's own, A * K rows


@dataclass
class _Candidates:
    """The best ``2K`` extensions per sentence of one step, best first."""

    scores: Tensor  # (A, 2K)
    rows: Tensor  # (A, 2K) the hypothesis row (in A * K) each extends: the backpointer
    tokens: Tensor  # (A, 2K) the token it appends
    accepted_eos: Tensor  # (A, 2K) bool: <eos> ranked among the first K, with a finite score
    open_pos: Tensor  # (A, K) positions (in 2K) of the best K non-<eos> candidates


def _check_arguments(beam_size: int, n_best: int, length_penalty_alpha: float, form: str) -> None:
    if form not in LENGTH_PENALTY_FORMS:
        raise ValueError(f"length penalty form {form!r} is unknown; use 'gnmt' or 'power'")
    if beam_size < 1:
        raise ValueError(f"beam size is {beam_size}; it must be >= 1")
    if not 1 <= n_best <= beam_size:
        raise ValueError(f"n_best is {n_best}; it must be between 1 and the beam size ({beam_size})")
    if length_penalty_alpha < 0:
        raise ValueError(f"length penalty alpha is {length_penalty_alpha}; it must be >= 0 (0 disables it)")


def _beam_rows(state: DecoderState, B: int, K: int, share_memory: bool, device: torch.device) -> DecoderState:
    """The state of B sentences on K beam rows each.

    A state with an ``expand(K)`` method (the Transformer's) keeps one copy of what depends on the
    source alone (encoder memory, cross-attention keys and values) for the K rows of a sentence, and
    its ``reorder`` takes backpointers that stay within a sentence, as beam search's do. Any other
    state, or ``share_memory=False``, is copied to every row.
    """
    expand = getattr(state, "expand", None)
    if share_memory and expand is not None:
        return expand(K)
    return state.reorder(torch.arange(B, device=device).repeat_interleave(K))


def _initial_beams(model: nn.Module, src: Tensor, src_lengths: Tensor, limits: Tensor, K: int,
                   share_memory: bool) -> _Beams:
    """Encode once, then give each sentence K rows (see :func:`_beam_rows`); only beam 0 starts alive."""
    B, device = src.size(0), src.device
    state = _beam_rows(model.encode(src, src_lengths), B, K, share_memory, device)
    scores = torch.full((B, K), float("-inf"), device=device)
    scores[:, 0] = 0.0  # the other beams are copies; -inf keeps them from being expanded twice
    return _Beams(
        sentences=torch.arange(B, device=device), limits=limits, scores=scores,
        kth_best=torch.full((B, K), float("-inf"), device=device),
        n_finished=torch.zeros(B, dtype=torch.long, device=device),
        tokens=torch.zeros(B * K, 0, dtype=torch.long, device=device), attentions=None, state=state,
    )  # fmt: skip


def _top_candidates(beams: _Beams, log_probs: Tensor, K: int) -> _Candidates:
    """``log_probs`` (A * K, V) -> the best 2K extensions per sentence."""
    A, V = beams.scores.size(0), log_probs.size(-1)
    total = (beams.scores.view(-1, 1) + log_probs).view(A, K * V)  # (A, K * V)
    scores, flat = total.topk(min(2 * K, K * V), dim=1)  # (A, 2K), sorted
    beam, tokens = flat // V, flat % V
    rows = torch.arange(A, device=flat.device).unsqueeze(1) * K + beam  # (A, 2K) rows in A * K
    rank = torch.arange(scores.size(1), device=flat.device).expand_as(scores)
    is_eos = tokens == EOS_ID
    accepted_eos = is_eos & (rank < K) & scores.isfinite()
    # non-<eos> candidates first, each group in rank order; the first K are the new open beams
    open_pos = (rank + is_eos.long() * scores.size(1)).argsort(dim=1)[:, :K]  # (A, K)
    return _Candidates(scores, rows, tokens, accepted_eos, open_pos)


def _finished(beams: _Beams, cand: _Candidates, mask: Tensor, append_token: bool, steps: int, norm: LengthNorm,
              attentions: Attentions | None, complete: bool) -> _Finished:
    """Snapshot the candidates where ``mask`` (A, 2K) is True as finished hypotheses.

    ``attentions``: per layer (A * K, heads, steps, S), the history including this step's weights.
    """
    sentence_pos, cand_pos = mask.nonzero(as_tuple=True)  # (N,), (N,)
    rows = cand.rows[sentence_pos, cand_pos]  # (N,)
    tokens = beams.tokens[rows]  # (N, t)
    if append_token:
        tokens = torch.cat([tokens, cand.tokens[sentence_pos, cand_pos].unsqueeze(1)], dim=1)  # (N, t + 1)
    scores = cand.scores[sentence_pos, cand_pos]
    return _Finished(
        sentences=beams.sentences[sentence_pos], tokens=tokens, scores=scores,
        normalized=scores / norm.divisor(steps),
        attentions=None if attentions is None else tuple(a[rows] for a in attentions), complete=complete,
    )  # fmt: skip


def _advance(beams: _Beams, cand: _Candidates, keep: Tensor, kth_best: Tensor, n_finished: Tensor,
             state: DecoderState, attentions: Attentions | None) -> _Beams:
    """The open beams of the sentences in ``keep`` (A,) bool, with every history reordered."""
    open_rows = cand.rows.gather(1, cand.open_pos)[keep].view(-1)  # (A' * K,) the backpointers
    open_tokens = cand.tokens.gather(1, cand.open_pos)[keep].view(-1, 1)  # (A' * K, 1)
    return _Beams(
        sentences=beams.sentences[keep], limits=beams.limits[keep],
        scores=cand.scores.gather(1, cand.open_pos)[keep], kth_best=kth_best[keep], n_finished=n_finished[keep],
        tokens=torch.cat([beams.tokens[open_rows], open_tokens], dim=1),
        attentions=None if attentions is None else tuple(a[open_rows] for a in attentions),
        state=state.reorder(open_rows),
    )  # fmt: skip


def _with_step(history: Attentions | None, step: Attentions | None) -> Attentions | None:
    """Append this step's weights, per layer (rows, heads, 1, S), to the history (rows, heads, t, S)."""
    if step is None:
        return None
    if history is None:
        return tuple(step)
    return tuple(torch.cat([h, s], dim=2) for h, s in zip(history, step, strict=True))


def _step(model: nn.Module, beams: _Beams, K: int, t: int, norm: LengthNorm,
          return_attention: bool) -> tuple[_Beams | None, list[_Finished]]:
    """Decode step ``t`` (the one producing token ``t + 1``) for every open hypothesis."""
    if t == 0:
        prev = torch.full((beams.tokens.size(0),), BOS_ID, dtype=torch.long, device=beams.tokens.device)
    else:
        prev = beams.tokens[:, -1]  # (A * K,)
    out = model.decode_step(prev, beams.state, return_attention=return_attention)
    log_probs = torch.log_softmax(out.logits.float(), dim=-1)  # (A * K, V), a fresh tensor: mask it in place
    log_probs[:, list(UNPRODUCIBLE)] = float("-inf")
    cand = _top_candidates(beams, log_probs, K)
    attentions = _with_step(beams.attentions, out.cross_attentions if return_attention else None)
    steps, lp = t + 1, norm.divisor(t + 1)
    finished = []
    if bool(cand.accepted_eos.any()):
        finished.append(_finished(beams, cand, cand.accepted_eos, False, steps, norm, attentions, complete=True))
    new_normalized = torch.where(cand.accepted_eos, cand.scores / lp, float("-inf"))  # (A, 2K)
    kth_best = torch.cat([beams.kth_best, new_normalized], dim=1).topk(K, dim=1).values  # (A, K)
    count = beams.n_finished + cand.accepted_eos.sum(dim=1)  # (A,)
    best_open = cand.scores.gather(1, cand.open_pos)[:, 0] / lp  # (A,)
    at_limit = steps >= beams.limits
    done = at_limit | ((count >= K) if norm.stops_at_k_finished else (kth_best[:, -1] >= best_open))
    if bool(at_limit.any()):
        cut = torch.zeros_like(cand.accepted_eos).scatter(1, cand.open_pos, True) & at_limit.unsqueeze(1)
        if not norm.complete_first:
            cut[:, K:] = False  # CTranslate2 keeps the first K candidates at the limit, <eos> or not
        finished.append(_finished(beams, cand, cut & cand.scores.isfinite(), True, steps, norm, attentions,
                                  complete=False))
    if bool(done.all()):
        return None, finished
    return _advance(beams, cand, ~done, kth_best, count, out.state, attentions), finished


def _assemble(finished: list[_Finished], batch: int, n_best: int, src_lengths: list[int],
              complete_first: bool = True) -> list[list[Hypothesis]]:
    """Per sentence, the ``n_best`` best finished hypotheses by normalised score (complete before cut first)."""
    entries: list[list[tuple[tuple[bool, float], _Finished, int]]] = [[] for _ in range(batch)]
    for chunk in finished:
        for i, (sentence, normalized) in enumerate(zip(chunk.sentences.tolist(), chunk.normalized.tolist(),
                                                       strict=True)):
            entries[sentence].append(((chunk.complete or not complete_first, normalized), chunk, i))
    results = []
    for sentence, candidates in enumerate(entries):
        candidates.sort(key=lambda entry: entry[0], reverse=True)  # stable: earlier first on ties
        results.append([_hypothesis(chunk, i, src_lengths[sentence]) for _, chunk, i in candidates[:n_best]])
    return results


def _hypothesis(chunk: _Finished, i: int, src_len: int) -> Hypothesis:
    attentions = None
    if chunk.attentions is not None:
        attentions = tuple(a[i, :, :, :src_len] for a in chunk.attentions)  # (heads, steps, src_len)
    return Hypothesis(tokens=chunk.tokens[i].tolist(), score=float(chunk.scores[i]), cross_attentions=attentions,
                      complete=chunk.complete, normalized_score=float(chunk.normalized[i]))


@torch.no_grad()
def beam_search(model: nn.Module, src: Tensor, src_lengths: Tensor, beam_size: int = 5, n_best: int = 1,
                length_penalty: float = 0.0, max_len_ratio: float = 1.5, max_len: int = 100,
                return_attention: bool = False, length_penalty_form: str = "gnmt",
                share_memory: bool = True) -> list[list[Hypothesis]]:
    """Beam search for a batch; see the module docstring.

    Args:
        src: (B, S) source ids padded with 0; src_lengths: (B,).
        beam_size: K, the open hypotheses kept per sentence; ``n_best`` (<= K) are returned.
        length_penalty: alpha; 0 ranks finished hypotheses by summed log-probability.
        length_penalty_form: ``"gnmt"`` ranks by ``log P / ((5 + steps) / 6) ** alpha``, ``"power"`` by
            ``log P / steps ** alpha`` with CTranslate2's stopping rule (module docstring).
        max_len_ratio, max_len: the per-sentence limit in steps, as :func:`length_limits`.
        return_attention: give every hypothesis its cross-attention, per layer
            (heads, steps, src_len), carried through the beam's reordering.
        share_memory: let a sentence's beams share its encoder memory and cross-attention keys and
            values when the model's state allows it (:func:`_beam_rows`); False copies them to every
            beam and every step, as before (the same translations; for tests and benchmarks).

    Returns:
        Per sentence, up to ``n_best`` :class:`Hypothesis`, best first (fewer only when the model
        gives too few tokens a finite probability).
    """
    _check_arguments(beam_size, n_best, length_penalty, length_penalty_form)
    norm = LengthNorm(length_penalty, length_penalty_form)
    check_sources(src, src_lengths)
    limits = length_limits(src_lengths, max_len_ratio, max_len).to(src.device)
    beams: _Beams | None = _initial_beams(model, src, src_lengths, limits, beam_size, share_memory)
    finished: list[_Finished] = []
    t = 0
    while beams is not None:
        beams, done = _step(model, beams, beam_size, t, norm, return_attention)
        finished.extend(done)
        t += 1
    return _assemble(finished, src.size(0), n_best, src_lengths.tolist(), norm.complete_first)
