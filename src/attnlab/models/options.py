"""Every model choice, declared once, and the one set of rules that ties model keys together.

Plain Python (no torch), so that the config loader can use it without loading a model library: the
``model:`` section of :mod:`attnlab.config` is annotated with these ``Literal`` types, the modules
take their choice tuples from here, and :func:`check_model` is run both by the config loader (before
anything is created) and by the model builders (for models built in code).
"""

from __future__ import annotations

from typing import Any, Literal, get_args

__all__ = [
    "Arch", "Cell", "BridgeKind", "LayerMismatch", "AttentionKind", "Placement", "TieMode", "Norm", "Positional",
    "Activation", "TeacherForcingMode", "ARCHS", "CELLS", "BRIDGES", "LAYER_MISMATCH", "ATTENTION_KINDS",
    "PLACEMENTS", "TIE_MODES", "NORMS", "POSITIONALS", "ACTIVATIONS", "TEACHER_FORCING_MODES",
    "decoder_hidden_size", "check_model", "check_tying",
]

Arch = Literal["rnn", "transformer"]
Cell = Literal["gru", "lstm", "rnn"]
BridgeKind = Literal["concat", "sum", "average", "linear", "tanh", "affine", "none", "stack"]
LayerMismatch = Literal["last", "first", "repeat", "zeros", "average", "linear"]
AttentionKind = Literal["none", "dot", "scaled_dot", "general", "concat", "additive", "qkv", "multihead"]
Placement = Literal["luong", "bahdanau"]
TieMode = Literal["none", "decoder", "three_way"]
Norm = Literal["post", "pre"]
Positional = Literal["sinusoidal", "learned"]
Activation = Literal["relu", "gelu"]
TeacherForcingMode = Literal["step", "sequence"]

ARCHS: tuple[str, ...] = get_args(Arch)
CELLS: tuple[str, ...] = get_args(Cell)
BRIDGES: tuple[str, ...] = get_args(BridgeKind)
LAYER_MISMATCH: tuple[str, ...] = get_args(LayerMismatch)
ATTENTION_KINDS: tuple[str, ...] = get_args(AttentionKind)
PLACEMENTS: tuple[str, ...] = get_args(Placement)
TIE_MODES: tuple[str, ...] = get_args(TieMode)
NORMS: tuple[str, ...] = get_args(Norm)
POSITIONALS: tuple[str, ...] = get_args(Positional)
ACTIVATIONS: tuple[str, ...] = get_args(Activation)
TEACHER_FORCING_MODES: tuple[str, ...] = get_args(TeacherForcingMode)

_CHOICES = {"arch": ARCHS, "cell": CELLS, "bridge": BRIDGES, "layer_mismatch": LAYER_MISMATCH,
            "attention": ATTENTION_KINDS, "attention_placement": PLACEMENTS, "tie_embeddings": TIE_MODES,
            "norm": NORMS, "positional": POSITIONALS, "activation": ACTIVATIONS}
_POSITIVE = ("emb_dim", "hid_dim", "enc_layers", "dec_layers", "attention_heads", "d_model", "heads", "ffn_dim",
             "max_positions")


def decoder_hidden_size(hid_dim: int, bidirectional: bool, bridge: str) -> int:
    """The RNN decoder's hidden size: doubled only when two encoder directions are concatenated."""
    return 2 * hid_dim if bidirectional and bridge == "concat" else hid_dim


def check_tying(tie_embeddings: str, src_vocab_size: int, tgt_vocab_size: int) -> None:
    """Three-way tying shares one matrix between source and target: the vocabularies must have one size."""
    if tie_embeddings == "three_way" and src_vocab_size != tgt_vocab_size:
        raise ValueError(f"config key 'model.tie_embeddings' is 'three_way', which shares one matrix between source "
                         f"and target, but the vocabularies differ ({src_vocab_size} vs {tgt_vocab_size}); use a "
                         "shared vocabulary (data.shared_vocab=true) or tie_embeddings='decoder'")


def check_model(m: Any, src_vocab_size: int | None = None, tgt_vocab_size: int | None = None) -> None:
    """Raise ValueError, naming the ``model.*`` key, for a value or combination the models refuse.

    ``m`` is a ``ModelConfig`` (or anything with its attributes). The vocabulary sizes, when known,
    are checked too (three-way tying needs one vocabulary).
    """
    for key, choices in _CHOICES.items():
        if getattr(m, key) not in choices:
            raise ValueError(f"config key 'model.{key}' is {getattr(m, key)!r}; expected one of {', '.join(choices)}")
    for key in _POSITIVE:
        if getattr(m, key) < 1:
            raise ValueError(f"config key 'model.{key}' is {getattr(m, key)}; it must be >= 1")
    if not 0.0 <= m.dropout < 1.0:
        raise ValueError(f"config key 'model.dropout' is {m.dropout}; it must be in [0, 1)")
    if src_vocab_size is not None and tgt_vocab_size is not None:
        check_tying(m.tie_embeddings, src_vocab_size, tgt_vocab_size)
    if m.arch == "transformer":
        if m.d_model % m.heads:
            raise ValueError(f"config key 'model.heads' is {m.heads}, which does not divide model.d_model={m.d_model}")
        return
    _check_rnn(m)


def _check_rnn(m: Any) -> None:
    dec_hid = decoder_hidden_size(m.hid_dim, m.bidirectional, m.bridge)
    if m.attention_heads != 1 and m.attention != "multihead":
        raise ValueError(f"config key 'model.attention_heads' is {m.attention_heads}, but only attention 'multihead' "
                         f"has heads (model.attention is {m.attention!r})")
    if m.attention == "multihead" and dec_hid % m.attention_heads:
        raise ValueError(f"config key 'model.attention_heads' is {m.attention_heads}, which does not divide the "
                         f"decoder hidden size {dec_hid} (model.hid_dim={m.hid_dim}, bridge {m.bridge!r})")
    if m.input_feeding and (m.attention == "none" or m.attention_placement != "luong"):
        raise ValueError("config key 'model.input_feeding' needs attention with model.attention_placement='luong' "
                         f"(got attention {m.attention!r}, placement {m.attention_placement!r})")
    if m.attention == "none" and m.bridge == "none":
        raise ValueError("config keys 'model.attention' and 'model.bridge' are both 'none', which leaves the decoder "
                         "no view of the source; choose an attention type or a bridge")
