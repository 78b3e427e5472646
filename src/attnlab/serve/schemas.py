"""The shapes of the REST API's requests and answers (they document themselves at ``/docs``).

Requests refuse unknown fields, so a misspelt option (``nbest``) is an error rather than ignored.
Limits that depend on the server's settings (beam size, sentence length, ...) are checked by
:class:`attnlab.serve.limits.Limits`, whose values ``GET /api/limits`` gives.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "TranslateRequest", "AttentionRequest", "Candidate", "Translation", "TranslateResponse", "AttentionRecordOut",
    "AttentionResponse", "RunSummary", "RunDetails", "CurvePoint", "LimitsOut", "StatusOut", "ErrorOut",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TranslateRequest(_Request):
    sentences: list[str] = Field(description="raw sentences, normalised and tokenised the run's way",
                                 examples=[["i am cold .", "he is a teacher ."]])
    beam: int = Field(5, description="beam size; 1 is greedy search")
    n_best: int = Field(1, description="candidates per sentence, best first (at most beam)")


class AttentionRequest(_Request):
    text: str = Field(description="the source sentence (raw)", examples=["i am cold ."])
    reference: str | None = Field(None, description="a translation to force through the decoder instead of "
                                                    "decoding one (teacher forcing)")
    kind: Literal["all", "encoder", "decoder", "cross"] = Field("all", description="which attention to return")
    beam: int = Field(1, description="beam size when decoding (no reference); 1 is greedy")
    compare_init: bool = Field(False, description="also run the same tokens through the weights at "
                                                  "initialisation (checkpoints/init.pt)")


class Candidate(BaseModel):
    text: str = Field(description="detokenised translation")
    tokens: list[str]
    score: float = Field(description="summed log-probability, <eos> included")
    normalized_score: float | None = Field(description="what beam search ranked by (None from greedy search)")
    complete: bool = Field(description="False when cut at the length limit")


class Translation(BaseModel):
    source: str
    src_tokens: list[str] = Field(description="the source as the model read it")
    n_best: list[Candidate]


class TranslateResponse(BaseModel):
    run: str
    beam: int
    n_best: int
    seconds: float = Field(description="inference time, model loading included")
    load_seconds: float = Field(description="time spent loading the model (0 when it was already loaded)")
    translations: list[Translation]


class AttentionRecordOut(BaseModel):
    src_tokens: list[str]
    tgt_tokens: list[str] = Field(description="target positions, each labelled by the token it predicts")
    attentions: dict[str, list[list[list[list[float]]]]] = Field(
        description="per kind, per layer, per head, a (query, key) map: rows sum to 1")
    init_attentions: dict[str, list[list[list[list[float]]]]] | None = Field(
        description="the same under the weights at initialisation (with compare_init)")
    title: str


class AttentionResponse(BaseModel):
    run: str
    target: str = Field(description="the text whose attention is shown: the translation, or the reference")
    forced: bool = Field(description="True when target is the forced reference")
    seconds: float
    load_seconds: float
    record: AttentionRecordOut
    stats: list[dict[str, Any]] = Field(description="per (kind, layer, head): entropy, max weight, diagonal "
                                                    "share, ... (null where undefined)")


class CurvePoint(BaseModel):
    epoch: float
    time: float | None = Field(description="training wall time (s) at the end of that epoch")
    value: float


class RunSummary(BaseModel):
    id: str = Field(description="the run's id in every other request")
    name: str
    group: str = Field(description="the sweep or folder the run was found in")
    report_id: str | None = Field(description="the group's comparison report, at /reports/{report_id}")
    architecture: str
    arch: str | None
    parameters: int | None
    best: dict[str, float] = Field(description="best validation scores (val/bleu, val/loss, ...) and their epoch")
    scores: dict[str, float] = Field(description="BLEU of each stored evaluation, e.g. test-beam5")
    epochs: int | None
    train_time_s: float | None
    status: str
    has_checkpoint: bool
    has_init: bool = Field(description="whether compare_init is possible")


class RunDetails(RunSummary):
    path: str
    config: dict[str, Any]
    summary: dict[str, Any]
    curves: dict[str, list[CurvePoint]] = Field(description="per metric, one point per epoch")


class LimitsOut(BaseModel):
    max_chars: int
    max_sentences: int
    max_beam: int
    max_n_best: int
    max_body_bytes: int


class StatusOut(BaseModel):
    runs: int
    cache: dict[str, Any] = Field(description="loaded models, their bytes and the budget")
    gate: dict[str, int] = Field(description="workers, queue, requests in progress, requests refused")


class ErrorOut(BaseModel):
    detail: str = Field(description="what went wrong, in one line")
