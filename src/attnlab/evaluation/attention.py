"""``attention_report``: one sentence through a trained run, every attention map drawn, counted and saved.

Why here, in ``evaluation/``: like :mod:`attnlab.evaluation.evaluate` it loads a run, reads text the
run's way and runs the model over it, then reports on what came out. It sits above ``decoding`` and
``models`` (it uses the Translator and the models' teacher-forced pass) and below ``cli``; drawing is
left to :mod:`attnlab.viz`, which it hands arrays and tokens, so matplotlib stays inside ``viz``.

What is drawn: the source is normalised, tokenised and truncated as the Translator does. The target
is either the run's own translation (greedy, or beam search with ``beam`` > 1) or, when a
``reference`` is given, that reference forced through the decoder (teacher forcing), the usual way
to study alignment. Either way the attention comes from one teacher-forced pass
``model(batch, return_attention=True)`` over ``<bos> y1 .. yn``, so all kinds the model has are
collected at once (encoder self, decoder self, cross; every layer and head). For a decoded target
this pass recomputes exactly the attention of the search, because the decoder saw the same prefix.

Labels: source tokens as the model saw them (out-of-vocabulary words as ``<unk>``) along x; target
positions along y, each labelled by the token it PREDICTS: ``y1 .. yn, <eos>`` (row 0 reads
``<bos>`` and predicts ``y1``). Decoder self-attention uses the same labels on both axes, so its
column ``yj`` is the position that predicts ``yj`` (it reads ``y(j-1)``). The ``<eos>`` row is a
real prediction, so figures show it (``show_special=True``); a single sentence has no padding.

With ``compare_init`` the SAME token ids go through the run's weights at initialisation
(``checkpoints/init.pt``), so the "initial" and "trained" maps have identical rows and columns.

Files written to ``out_dir`` (``NAME`` defaults to a slug of the source text)::

    NAME-cross.FMT                 the cross map: the RNN's single map, or the last layer head by head
    NAME-KIND-grid.FMT             layers x heads, one per kind
    NAME-KIND-before-after.FMT     initial vs trained, one per kind (with compare_init)
    NAME.html                      one self-contained interactive page (with the initial model too)
    NAME-stats.csv NAME-stats.md   per-head statistics (init_* columns with compare_init)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from attnlab.attention_view.html import attention_html, render_attention_view
from attnlab.attention_view.records import AttentionRecord
from attnlab.attention_view.stats import record_stats, stats_markdown, write_stats_csv
from attnlab.data.batching import collate
from attnlab.data.errors import DataError
from attnlab.decoding.loading import load_run
from attnlab.decoding.translator import Translator
from attnlab.rundir import RunError, open_run, run_of_checkpoint
from attnlab.viz import plot_attention, plot_attention_grid, plot_before_after, save_figure

__all__ = ["AttentionReport", "attention_report", "collect_attention", "translator_attention", "write_attention_files",
           "sentence_slug", "KIND_CHOICES", "FORMATS"]

KIND_CHOICES = ("all", "encoder", "decoder", "cross")
FORMATS = ("png", "svg", "pdf", "html")
_KIND_NAMES = {"encoder": "encoder self-attention", "decoder": "decoder self-attention", "cross": "cross-attention"}


@dataclass
class AttentionReport:
    """What :func:`attention_report` computed and wrote.

    ``record``: tokens and attention (``init_attentions`` too with compare_init); ``target``: the
    text whose attention is shown (the normalised reference, or the model's translation);
    ``forced``: True when ``target`` is the reference; ``stats``: one row per (kind, layer, head);
    ``markdown``: those rows as a table; ``files``: every path written, in writing order.
    """

    record: AttentionRecord
    target: str
    forced: bool
    stats: list[dict[str, Any]] = field(default_factory=list)
    markdown: str = ""
    files: list[Path] = field(default_factory=list)

    def _repr_html_(self) -> str:
        """The interactive attention view with these statistics, inline in a notebook (works offline)."""
        return render_attention_view(self.record, self.stats)


def attention_report(
    run_dir: str | Path,
    text: str,
    reference: str | None = None,
    kind: str = "all",
    compare_init: bool = False,
    beam: int = 1,
    formats: Sequence[str] = ("png", "svg", "html"),
    out_dir: str | Path = "attention",
    checkpoint: str = "best",
    name: str | None = None,
    dpi: int = 150,
) -> AttentionReport:
    """Collect the attention of one sentence (see the module docstring) and write figures, page and tables.

    ``kind``: ``"all"`` (every kind the model has) or one of ``"encoder"``, ``"decoder"``, ``"cross"``.
    ``formats``: any of ``png``, ``svg``, ``pdf`` (figures) and ``html`` (the page); the statistics are
    always written. ``checkpoint``: ``best``, ``last``, ``init`` or a checkpoint path.
    """
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ValueError(f"formats {list(formats)} are not all known; choose from {FORMATS}")
    _check_output(out_dir, name, dpi)
    record, target = collect_attention(run_dir, text, reference, kind, compare_init, beam, checkpoint)
    stem = Path(out_dir) / (name or sentence_slug(text))
    stats = record_stats(record)
    files = write_attention_files(record, stem, formats, dpi, stats)
    return AttentionReport(record, target, reference is not None, stats, stats_markdown(stats), files)


DPI_RANGE = (10, 1200)


def _check_output(out_dir: str | Path, name: str | None, dpi: int) -> None:
    """Refuse, before any work, an output that cannot be written where the user meant it."""
    if Path(out_dir).exists() and not Path(out_dir).is_dir():
        raise DataError(f"--out {out_dir} is a file; give a folder (created if missing)")
    if name is not None and (not name.strip() or name in (".", "..") or any(c in name for c in "/\\\0")):
        raise DataError(f"--name {name!r} must be a plain file name stem, without folders")
    if not DPI_RANGE[0] <= dpi <= DPI_RANGE[1]:
        raise DataError(f"--dpi {dpi} is outside {DPI_RANGE[0]}..{DPI_RANGE[1]}")


def collect_attention(
    run_dir: str | Path,
    text: str,
    reference: str | None = None,
    kind: str = "all",
    compare_init: bool = False,
    beam: int = 1,
    checkpoint: str = "best",
) -> tuple[AttentionRecord, str]:
    """The :class:`AttentionRecord` of ``text`` (forced on ``reference`` if given) and the target text."""
    _check_choices(kind, beam)
    root, translator = _open(run_dir, checkpoint)
    init_model = _init_model(root, translator.device) if compare_init else None
    return translator_attention(translator, text, reference, kind, init_model, beam,
                                label=f"{root.name} ({Path(checkpoint).name})", where=str(root))


def _check_choices(kind: str, beam: int) -> None:
    if kind not in KIND_CHOICES:
        raise ValueError(f"attention kind {kind!r} is unknown; choose one of {KIND_CHOICES}")
    if beam < 1:
        raise ValueError(f"beam is {beam}; it must be >= 1 (1 is greedy search)")


def translator_attention(
    translator: Translator,
    text: str,
    reference: str | None = None,
    kind: str = "all",
    init_model: nn.Module | None = None,
    beam: int = 1,
    label: str = "",
    where: str = "this run",
) -> tuple[AttentionRecord, str]:
    """:func:`collect_attention` with a Translator already loaded (a server keeps them loaded).

    ``init_model``: the same model at initialisation, run on the same tokens (``init_attentions``);
    ``label`` starts the record's title; ``where`` names the run in error messages.
    """
    _check_choices(kind, beam)
    source = translator.read_source(text, line=1)
    if not source.src_ids:
        raise DataError(f"the source {text!r} is empty after normalisation and tokenisation")
    if reference is not None:
        tgt_ids, complete, target = _reference_ids(translator, reference), True, translator.normalize(reference)
    else:
        best = translator.translate([text], beam=beam)[0].best
        tgt_ids, complete, target = translator.tgt_vocab.encode(best.tokens), best.complete, best.text
    # Row i of the forced pass reads position i of <bos> y1 .. and predicts the next token; an output
    # cut at the length limit never predicted <eos>, so its last token is not fed back in.
    tgt_in = tgt_ids if complete else tgt_ids[:-1]
    attentions = _select(_forced_attentions(translator.model, source.src_ids, tgt_in), kind, where)
    init_attentions = None
    if init_model is not None:
        init_attentions = {k: v for k, v in _forced_attentions(init_model, source.src_ids, tgt_in).items()
                           if k in attentions}
    src_labels = [translator.src_vocab.itos[i] for i in source.src_ids]
    tgt_labels = [translator.tgt_vocab.itos[i] for i in tgt_ids] + (["<eos>"] if complete else [])
    how = "forced on the reference" if reference is not None else ("greedy" if beam == 1 else f"beam {beam}")
    title = f"{label}, {how}" if label else how
    record = AttentionRecord.from_arrays(src_labels, tgt_labels, attentions, init_attentions, title=title)
    return record, target


def _open(run_dir: str | Path, checkpoint: str) -> tuple[Path, Translator]:
    """The run's root folder and a Translator on ``checkpoint`` (a checkpoint file as run_dir also works)."""
    run, file = run_of_checkpoint(run_dir)
    return run.root, Translator.from_run(run.root, checkpoint=str(file) if file is not None else checkpoint)


def _reference_ids(translator: Translator, reference: str) -> list[int]:
    """The reference normalised and tokenised the run's way, as target ids (unknown words -> <unk>)."""
    normalised = translator.normalize(reference)
    tokens = translator.tgt_tokenizer.encode(normalised) if normalised else []
    if not tokens:
        raise DataError(f"the reference {reference!r} is empty after normalisation and tokenisation")
    if len(tokens) + 1 > translator.max_len:  # + 1: the position that predicts <eos>
        raise DataError(f"the reference has {len(tokens)} tokens; with <eos> that is more than the model's "
                        f"limit ({translator.limit_reason}); give a shorter reference")
    return translator.tgt_vocab.encode(tokens)


@torch.no_grad()
def _forced_attentions(model: nn.Module, src_ids: list[int], tgt_in: list[int]) -> dict[str, tuple[Tensor, ...]]:
    """One teacher-forced pass over ``<bos> + tgt_in``: per kind, per layer (1, heads, q, k) tensors."""
    device = next(model.parameters()).device
    batch = collate([(src_ids, tgt_in)], [0]).to(device)  # tgt_in (1, T) = <bos> + tgt_in
    out = model.eval()(batch, return_attention=True)
    given = {"encoder": out.encoder_attentions, "decoder": out.decoder_attentions, "cross": out.cross_attentions}
    return {kind: tuple(a.cpu() for a in layers) for kind, layers in given.items() if layers}


def _select(attentions: dict[str, tuple[Tensor, ...]], kind: str, where: str) -> dict[str, tuple[Tensor, ...]]:
    if not attentions:
        raise RunError(f"the model of {where} returns no attention (an RNN with model.attention=none?)")
    if kind == "all":
        return attentions
    if kind not in attentions:
        raise RunError(f"the model of {where} has no {_KIND_NAMES[kind]}; it has: {', '.join(attentions)}")
    return {kind: attentions[kind]}


def _init_model(root: Path, device: torch.device) -> nn.Module:
    init = open_run(root).init
    if not init.is_file():
        raise RunError(f"{root} has no {init.relative_to(root)} (the weights at initialisation, which training "
                       "saves before the first step); compare_init needs it")
    return load_run(root, checkpoint="init", device=device).model


def write_attention_files(
    record: AttentionRecord,
    stem: str | Path,
    formats: Sequence[str] = ("png", "svg", "html"),
    dpi: int = 150,
    stats: list[dict[str, Any]] | None = None,
) -> list[Path]:
    """Write the figures, the page and the statistics of ``record`` as ``<stem>-*`` files; return the paths."""
    stem = Path(stem)
    rows = record_stats(record) if stats is None else stats  # computed once, for the page and the tables
    images = [fmt for fmt in formats if fmt != "html"]
    src, tgt = record.src_tokens, record.tgt_tokens
    files: list[Path] = []
    if images and "cross" in record.attentions:
        files += save_figure(_cross_figure(record), f"{stem}-cross", images, dpi)
    for kind in record.attentions if images else ():
        heading = _heading(record, _KIND_NAMES[kind])
        grid = plot_attention_grid(record.layers(kind), src, tgt, kind=kind, show_special=True, title=heading)
        files += save_figure(grid, f"{stem}-{kind}-grid", images, dpi)
        if record.init_attentions is not None:
            pair = plot_before_after(record.layers(kind, init=True), record.layers(kind), src, tgt, kind=kind,
                                     show_special=True, title=heading)
            files += save_figure(pair, f"{stem}-{kind}-before-after", images, dpi)
    if "html" in formats:
        files.append(attention_html(record, f"{stem}.html", rows))
    files.append(write_stats_csv(rows, f"{stem}-stats.csv"))
    markdown = Path(f"{stem}-stats.md")
    markdown.write_text(stats_markdown(rows), encoding="utf-8")
    files.append(markdown)
    return files


def _cross_figure(record: AttentionRecord) -> Any:
    """The RNN's single cross map, or the last layer of a Transformer's cross-attention head by head."""
    layers = record.layers("cross")  # list of (heads, q, k)
    if len(layers) == 1 and layers[0].shape[0] == 1:
        heading = _heading(record, "cross-attention")
        return plot_attention(layers[0][0], record.src_tokens, record.tgt_tokens, title=heading, show_special=True)
    return plot_attention_grid(layers[-1:], record.src_tokens, record.tgt_tokens, kind="cross", show_special=True,
                               title=_heading(record, "cross-attention, last layer"), first_layer=len(layers) - 1)


def _heading(record: AttentionRecord, what: str) -> str:
    """Two lines: what is drawn and from which run, then the sentence pair."""
    tgt = [t for t in record.tgt_tokens if t != "<eos>"]
    return f"{what} · {record.title}\n{' '.join(record.src_tokens)} → {' '.join(tgt)}"


def sentence_slug(text: str, limit: int = 40) -> str:
    """A file-name-safe stem from a sentence: lower-case words joined by '-', at most ``limit`` characters."""
    slug = "-".join(re.findall(r"\w+", text.lower()))[:limit].strip("-")
    return slug or "sentence"
