"""An attnlab Transformer as a CTranslate2 model (CTranslate2 is the CPU inference engine of OpenNMT).

:func:`transformer_spec` maps the model onto ``ctranslate2.specs.TransformerSpec`` weight for weight;
the export (:func:`attnlab.export.ctranslate2.export_run`) saves it, and the CTranslate2 backend
(:mod:`attnlab.decoding.ctranslate2_backend`) converts a run's model in memory. Every setting below
was checked on this machine by breaking it:

- attnlab (like ``torch.nn.Transformer``) ends each stack with a LayerNorm, in post-norm too.
  CTranslate2 applies ``encoder/decoder.layer_norm`` whenever it is present, but its Python spec only
  declares it for pre-norm: build with ``pre_norm=True``, then set ``pre_norm`` to the run's norm.
- ``gelu`` is the exact erf GELU (``Activation.GELU``, not ``GELUTanh``).
- Positions: attnlab's own table is exported, learned or sinusoidal. CTranslate2's built-in sinusoid
  puts all sines before all cosines, attnlab interleaves them; the sinusoid buffer is not in
  checkpoints, so it is the rebuilt one.
- Token embeddings are scaled by sqrt(d_model) (``scale_embeddings``); LayerNorm epsilon is 1e-5.
- Tied embeddings are the same values in every tied place; ``optimize`` stores them once.
- Specials: decoding starts with attnlab's ``<bos>``; sources carry neither ``<bos>`` nor ``<eos>``.

Weights map one to one (``nn.Linear`` is (out, in) on both sides): self-attention q, k, v stacked on
dim 0 into ``linear[0]``, output ``linear[1]``; cross-attention query ``linear[0]``, keys and values
stacked ``linear[1]``, output ``linear[2]``. CTranslate2 scales queries by 1/sqrt(head_dim) itself.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from attnlab.data.vocab import BOS, EOS, UNK
from attnlab.decoding.export_layout import QUANTIZATIONS, ExportError

if TYPE_CHECKING:
    from attnlab.config import ModelConfig

__all__ = ["require_ctranslate2", "check_exportable", "transformer_spec", "save_model"]


def require_ctranslate2() -> ModuleType:
    """The ``ctranslate2`` module, or a one-line error saying how to install it."""
    try:
        import ctranslate2
    except ImportError:
        raise ExportError("the CTranslate2 backend needs the ctranslate2 package: "
                          "pip install 'attnlab[ctranslate2]'") from None
    return ctranslate2


# ------------------------------------------------------------------------------------ the spec
def _array(*tensors: Tensor) -> Any:
    """Tensors stacked on dim 0 as one float32 numpy array, always a copy.

    A copy because CTranslate2 quantises arrays in place: a view would quantise the torch model too.
    """
    return torch.cat([t.detach().to("cpu", torch.float32) for t in tensors], dim=0).numpy().copy()


def _set_linear(spec: Any, *linears: nn.Linear) -> None:
    """One CTranslate2 linear from ``linears`` stacked on their output dimension (e.g. q, k, v)."""
    spec.weight = _array(*(linear.weight for linear in linears))  # (sum of out, in)
    spec.bias = _array(*(linear.bias for linear in linears))  # (sum of out,)


def _set_layer_norm(spec: Any, norm: nn.LayerNorm) -> None:
    spec.gamma = _array(norm.weight)
    spec.beta = _array(norm.bias)


def _set_embeddings(stack: Any, embedding: Any, token_spec: Any) -> None:
    """Token table, scaled by sqrt(d_model), and attnlab's own position table (max_positions, D)."""
    token_spec.weight = _array(embedding.tokens.weight)
    stack.scale_embeddings = True
    table = embedding.positions.weight if embedding.positions is not None else embedding.sinusoids
    stack.position_encodings.encodings = _array(table)


def _set_encoder(spec: Any, model: nn.Module) -> None:
    _set_embeddings(spec, model.src_embed, spec.embeddings[0])
    for layer_spec, layer in zip(spec.layer, model.encoder.layers, strict=True):
        attn = layer.self_attn
        _set_linear(layer_spec.self_attention.linear[0], attn.q_proj, attn.k_proj, attn.v_proj)
        _set_linear(layer_spec.self_attention.linear[1], attn.out_proj)
        _set_layer_norm(layer_spec.self_attention.layer_norm, layer.self_attn_res.norm)
        _set_linear(layer_spec.ffn.linear_0, layer.ffn.linear1)
        _set_linear(layer_spec.ffn.linear_1, layer.ffn.linear2)
        _set_layer_norm(layer_spec.ffn.layer_norm, layer.ffn_res.norm)
    _set_layer_norm(spec.layer_norm, model.encoder.norm)


def _set_decoder(spec: Any, model: nn.Module) -> None:
    _set_embeddings(spec, model.tgt_embed, spec.embeddings)
    for layer_spec, layer in zip(spec.layer, model.decoder.layers, strict=True):
        attn, cross = layer.self_attn, layer.cross_attn
        _set_linear(layer_spec.self_attention.linear[0], attn.q_proj, attn.k_proj, attn.v_proj)
        _set_linear(layer_spec.self_attention.linear[1], attn.out_proj)
        _set_layer_norm(layer_spec.self_attention.layer_norm, layer.self_attn_res.norm)
        _set_linear(layer_spec.attention.linear[0], cross.q_proj)
        _set_linear(layer_spec.attention.linear[1], cross.k_proj, cross.v_proj)
        _set_linear(layer_spec.attention.linear[2], cross.out_proj)
        _set_layer_norm(layer_spec.attention.layer_norm, layer.cross_attn_res.norm)
        _set_linear(layer_spec.ffn.linear_0, layer.ffn.linear1)
        _set_linear(layer_spec.ffn.linear_1, layer.ffn.linear2)
        _set_layer_norm(layer_spec.ffn.layer_norm, layer.ffn_res.norm)
    _set_layer_norm(spec.layer_norm, model.decoder.norm)
    _set_linear(spec.projection, model.generator)


def check_exportable(cfg: ModelConfig, where: str) -> None:
    """Refuse, in one line, a model CTranslate2 cannot run (its specs cover Transformers only)."""
    if cfg.arch != "transformer":
        raise ExportError(f"{where}: CTranslate2 supports Transformer models only, and this run is an RNN "
                          f"(model.arch={cfg.arch}); translate it with --backend torch")


def transformer_spec(model: nn.Module, cfg: ModelConfig, src_tokens: list[str], tgt_tokens: list[str]) -> Any:
    """A validated ``TransformerSpec`` holding ``model``'s weights; ``*_tokens`` are the vocabularies by id."""
    check_exportable(cfg, "model")
    specs = require_ctranslate2().specs
    activation = {"relu": specs.Activation.RELU, "gelu": specs.Activation.GELU}[cfg.activation]
    # pre_norm=True declares the final LayerNorm of each stack; the real norm is set just below
    spec = specs.TransformerSpec.from_config((cfg.enc_layers, cfg.dec_layers), cfg.heads, pre_norm=True,
                                             activation=activation, alignment_heads=0)
    spec.encoder.pre_norm = spec.decoder.pre_norm = cfg.norm == "pre"
    _set_encoder(spec.encoder, model)
    _set_decoder(spec.decoder, model)
    config = spec.config
    config.unk_token, config.bos_token, config.eos_token, config.decoder_start_token = UNK, BOS, EOS, BOS
    config.add_source_bos = config.add_source_eos = False
    config.layer_norm_epsilon = model.encoder.norm.eps  # 1e-5, as every attnlab LayerNorm
    spec.register_source_vocabulary(list(src_tokens))
    spec.register_target_vocabulary(list(tgt_tokens))
    spec.validate()
    return spec


def save_model(spec: Any, directory: Path, quantization: str = "float32") -> None:
    """Write the CTranslate2 files of ``spec`` into the existing ``directory`` with ``quantization`` weights."""
    if quantization not in QUANTIZATIONS:
        raise ExportError(f"quantization {quantization!r} is unknown; choose one of {', '.join(QUANTIZATIONS)}")
    spec.optimize(quantization=quantization)
    spec.save(str(directory))


# ---------------------------------------------------------------------------- the directory
