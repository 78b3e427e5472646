"""Tokenizers: word level (white space after normalisation) and SentencePiece (unigram or BPE).

SentencePiece models are trained on the training split only and kept as bytes, so a run directory
can store them next to the vocabulary and a translator can load them back without the data.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import sentencepiece as spm

__all__ = ["WordTokenizer", "SentencePieceTokenizer", "train_sentencepiece", "load_tokenizer"]


class WordTokenizer:
    """Split on white space; detokenise by joining with single spaces."""

    kind = "word"

    def encode(self, text: str) -> list[str]:
        return text.split()

    def encode_batch(self, texts: list[str]) -> tuple[list[str], list[int]]:
        """Every token of ``texts`` end to end, and each text's token count."""
        return " ".join(texts).split(), [len(t.split()) for t in texts]

    def decode(self, tokens: Iterable[str]) -> str:
        return " ".join(tokens)

    def save(self, path: str | Path) -> None:  # nothing to store
        pass


class SentencePieceTokenizer:
    """A trained SentencePiece model; tokens are its pieces (``▁`` marks a word start)."""

    kind = "sentencepiece"

    def __init__(self, model_proto: bytes):
        self.model_proto = model_proto
        self.processor = spm.SentencePieceProcessor(model_proto=model_proto)

    def __getstate__(self) -> dict:  # for worker processes: the processor itself does not pickle
        return {"model_proto": self.model_proto}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_proto"])

    @property
    def pieces(self) -> list[str]:
        """Every piece of the model except its own control and unknown symbols."""
        sp = self.processor
        return [sp.id_to_piece(i) for i in range(sp.get_piece_size())
                if not (sp.is_control(i) or sp.is_unknown(i))]

    def encode(self, text: str) -> list[str]:
        return self.processor.encode(text, out_type=str)

    def encode_batch(self, texts: list[str]) -> tuple[list[str], list[int]]:
        """Every piece of ``texts`` end to end, and each text's piece count (one call into SentencePiece)."""
        pieces = self.processor.encode(texts, out_type=str)
        return [p for sentence in pieces for p in sentence], [len(sentence) for sentence in pieces]

    def decode(self, tokens: Iterable[str]) -> str:
        return self.processor.decode_pieces(list(tokens))

    def save(self, path: str | Path) -> None:
        Path(path).write_bytes(self.model_proto)

    @classmethod
    def load(cls, path: str | Path) -> SentencePieceTokenizer:
        return cls(Path(path).read_bytes())


def train_sentencepiece(sentences: Iterable[str], vocab_size: int, model_type: str = "unigram",
                        seed_sentences: int = 1_000_000) -> SentencePieceTokenizer:
    """Train on ``sentences`` (streamed; SentencePiece keeps at most ``seed_sentences`` of them, the first
    ones); deterministic for the same input.

    ``vocab_size`` is a soft limit (``hard_vocab_limit=False``) so that a small corpus still trains.
    """
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences),
        model_writer=model,
        vocab_size=vocab_size,
        model_type=model_type,
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        input_sentence_size=seed_sentences,
        shuffle_input_sentence=False,
        num_threads=1,
        minloglevel=2,
    )
    return SentencePieceTokenizer(model.getvalue())


def load_tokenizer(kind: str, path: str | Path | None = None) -> WordTokenizer | SentencePieceTokenizer:
    if kind == "word":
        return WordTokenizer()
    if kind == "sentencepiece":
        if path is None:
            raise ValueError("a SentencePiece tokenizer needs its model file")
        return SentencePieceTokenizer.load(path)
    raise ValueError(f"unknown tokenizer {kind!r}; choose 'word' or 'sentencepiece'")
