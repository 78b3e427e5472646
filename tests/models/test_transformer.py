"""The Transformer: equals torch.nn.Transformer, captures every attention, decodes incrementally."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from attnlab.models.embeddings import TransformerEmbedding, sinusoidal_table
from attnlab.models.transformer import Transformer, build_transformer
from attnlab.models.transformer_layers import attention, source_mask, target_mask

PAD = 0
ATOL = 1e-5
SIZES = dict(d_model=32, heads=4, enc_layers=2, dec_layers=2, ffn_dim=64, dropout=0.0)


def make_batch(seed: int = 0, vocab: int = 20) -> SimpleNamespace:
    """Four sentences padded with 0: sources of lengths 7, 4, 1, 6 and targets of lengths 6, 3, 5, 1."""
    g = torch.Generator().manual_seed(seed)
    src_lengths = torch.tensor([7, 4, 1, 6])
    tgt_lengths = torch.tensor([6, 3, 5, 1])
    src = torch.randint(1, vocab, (4, 7), generator=g)
    tgt_in = torch.randint(1, vocab, (4, 6), generator=g)
    src[torch.arange(7) >= src_lengths[:, None]] = PAD
    tgt_in[torch.arange(6) >= tgt_lengths[:, None]] = PAD
    return SimpleNamespace(src=src, src_lengths=src_lengths, tgt_in=tgt_in, tgt_lengths=tgt_lengths)


def make_model(seed: int = 0, vocab: int = 20, **overrides) -> Transformer:
    torch.manual_seed(seed)
    return Transformer(vocab, vocab, **{**SIZES, **overrides}).eval()


# ------------------------------------------------------------------ equivalence with torch.nn.Transformer
def copy_attention(ours: nn.Module, theirs: nn.MultiheadAttention) -> None:
    """torch stacks the q, k, v projections in ``in_proj_weight`` (3D, D); ours are separate."""
    for proj, weight, bias in zip(
        (ours.q_proj, ours.k_proj, ours.v_proj),
        theirs.in_proj_weight.chunk(3),
        theirs.in_proj_bias.chunk(3),
        strict=True,
    ):
        proj.weight.copy_(weight)
        proj.bias.copy_(bias)
    ours.out_proj.load_state_dict(theirs.out_proj.state_dict())


@torch.no_grad()
def copy_from_torch(model: Transformer, ref: nn.Transformer) -> None:
    for ours, theirs in zip(model.encoder.layers, ref.encoder.layers, strict=True):
        copy_attention(ours.self_attn, theirs.self_attn)
        ours.ffn.linear1.load_state_dict(theirs.linear1.state_dict())
        ours.ffn.linear2.load_state_dict(theirs.linear2.state_dict())
        ours.self_attn_res.norm.load_state_dict(theirs.norm1.state_dict())
        ours.ffn_res.norm.load_state_dict(theirs.norm2.state_dict())
    for ours, theirs in zip(model.decoder.layers, ref.decoder.layers, strict=True):
        copy_attention(ours.self_attn, theirs.self_attn)
        copy_attention(ours.cross_attn, theirs.multihead_attn)
        ours.ffn.linear1.load_state_dict(theirs.linear1.state_dict())
        ours.ffn.linear2.load_state_dict(theirs.linear2.state_dict())
        ours.self_attn_res.norm.load_state_dict(theirs.norm1.state_dict())
        ours.cross_attn_res.norm.load_state_dict(theirs.norm2.state_dict())
        ours.ffn_res.norm.load_state_dict(theirs.norm3.state_dict())
    model.encoder.norm.load_state_dict(ref.encoder.norm.state_dict())
    model.decoder.norm.load_state_dict(ref.decoder.norm.state_dict())


@pytest.mark.filterwarnings("ignore:.*nested.tensor")  # torch's own notes on its encoder fast path
@pytest.mark.parametrize(("norm", "activation"), [("post", "relu"), ("pre", "gelu")])
def test_matches_torch_transformer_on_padded_batches(norm: str, activation: str) -> None:
    model = make_model(norm=norm, activation=activation)
    ref = nn.Transformer(
        d_model=32,
        nhead=4,
        num_encoder_layers=2,
        num_decoder_layers=2,
        dim_feedforward=64,
        dropout=0.0,
        activation=activation,
        batch_first=True,
        norm_first=norm == "pre",
    ).eval()
    with torch.no_grad():  # random LayerNorm affines, so a wrong norm mapping cannot hide behind 1 and 0
        for p in ref.parameters():
            p.add_(0.1 * torch.randn_like(p))
    copy_from_torch(model, ref)
    b = make_batch()
    src_pad, tgt_pad = b.src.eq(PAD), b.tgt_in.eq(PAD)
    causal = nn.Transformer.generate_square_subsequent_mask(6, dtype=torch.bool)  # True = hidden
    x, y = model.src_embed(b.src), model.tgt_embed(b.tgt_in)

    with torch.no_grad():
        ref_memory = ref.encoder(x, src_key_padding_mask=src_pad)
        ref_hidden = ref.decoder(
            y, ref_memory, tgt_mask=causal, tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad
        )
        src_mask = source_mask(b.src_lengths, 7, x.dtype)
        memory, _ = model.encoder(x, src_mask)
        tgt_mask = target_mask(b.tgt_in, PAD, y.dtype)
        hidden = model.decoder(y, model.decoder.memory_keys_values(memory), tgt_mask, src_mask).hidden
        logits = model(b).logits

    # In eval mode torch's encoder takes its nested-tensor fast path, which returns 0 at padded source
    # positions instead of computing them; only real positions are comparable. (Padded positions are
    # masked out of every later attention, so their values never matter.)
    real_src, real_tgt = ~src_pad, ~tgt_pad
    torch.testing.assert_close(memory[real_src], ref_memory[real_src], atol=ATOL, rtol=0)
    torch.testing.assert_close(hidden[real_tgt], ref_hidden[real_tgt], atol=ATOL, rtol=0)
    torch.testing.assert_close(logits[real_tgt], model.generator(ref_hidden)[real_tgt], atol=ATOL, rtol=0)


# -------------------------------------------------------------------------------- attention capture
def test_attention_function_matches_sdpa_and_gives_masked_keys_zero_weight() -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    tgt_in = torch.tensor([[4, 5, 6, 0, 0], [7, 8, 9, 3, 2]])
    mask = target_mask(tgt_in, PAD, q.dtype)
    out, p_attn = attention(q, k, v, mask)
    expected = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=ATOL, rtol=0)
    assert torch.all(p_attn[mask.expand_as(p_attn) == float("-inf")] == 0)


def test_returned_attentions_have_one_tensor_per_layer_and_are_distributions() -> None:
    model = make_model(enc_layers=3, dec_layers=2)
    b = make_batch()
    out = model(b, return_attention=True)
    assert [a.shape for a in out.encoder_attentions] == [(4, 4, 7, 7)] * 3
    assert [a.shape for a in out.decoder_attentions] == [(4, 4, 6, 6)] * 2
    assert [a.shape for a in out.cross_attentions] == [(4, 4, 6, 7)] * 2
    src_pad = b.src.eq(PAD)[:, None, None, :]  # (B, 1, 1, S): padded keys
    tgt_pad = b.tgt_in.eq(PAD)[:, None, None, :]  # (B, 1, 1, T)
    future = torch.ones(6, 6, dtype=torch.bool).triu(diagonal=1)  # (T, T): above the diagonal
    for weights in out.encoder_attentions + out.decoder_attentions + out.cross_attentions:
        torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]), atol=ATOL, rtol=0)
    for weights in out.encoder_attentions + out.cross_attentions:
        assert torch.all(weights.masked_select(src_pad) == 0)
    for weights in out.decoder_attentions:
        assert torch.all(weights[..., future] == 0)
        assert torch.all(weights.masked_select(tgt_pad) == 0)


def test_no_attentions_unless_asked() -> None:
    out = make_model()(make_batch())
    assert out.encoder_attentions is None and out.decoder_attentions is None and out.cross_attentions is None


@pytest.mark.parametrize("norm", ["post", "pre"])
def test_fused_path_matches_explicit_path(norm: str) -> None:
    model, b = make_model(norm=norm), make_batch()
    with torch.no_grad():
        fused = model(b).logits
        explicit = model(b, return_attention=True).logits
    torch.testing.assert_close(fused, explicit, atol=ATOL, rtol=0)


def test_teacher_forcing_arguments_are_accepted_and_ignored() -> None:
    model, b = make_model(), make_batch()
    with torch.no_grad():
        plain = model(b).logits
        other = model(b, teacher_forcing=0.0, teacher_forcing_mode="sequence").logits
    torch.testing.assert_close(plain, other, atol=0, rtol=0)


# ----------------------------------------------------------------------------- incremental decoding
@pytest.mark.parametrize(("norm", "positional"), [("post", "sinusoidal"), ("pre", "learned")])
def test_decode_step_with_cache_matches_full_pass(norm: str, positional: str) -> None:
    model, b = make_model(norm=norm, positional=positional), make_batch()
    with torch.no_grad():
        full = model(b, return_attention=True)
        state = model.encode(b.src, b.src_lengths)
        for t in range(b.tgt_in.size(1)):
            step = model.decode_step(b.tgt_in[:, t], state, return_attention=True)
            assert step.state.self_kv[0][0].shape == (4, 4, t + 1, 8)  # the cache grows by one position
            # Rows whose prefix is all real tokens; later rows saw padding that the full pass masked.
            real = t < b.tgt_lengths
            torch.testing.assert_close(step.logits[real], full.logits[real, t], atol=ATOL, rtol=0)
            for cross_step, cross_full in zip(step.cross_attentions, full.cross_attentions, strict=True):
                assert cross_step.shape == (4, 4, 1, 7)
                torch.testing.assert_close(cross_step[real, :, 0], cross_full[real, :, t], atol=ATOL, rtol=0)
            state = step.state


def test_decode_step_leaves_its_input_state_alone_and_reorder_selects_rows() -> None:
    model, b = make_model(), make_batch()
    with torch.no_grad():
        state = model.encode(b.src, b.src_lengths)
        state = model.decode_step(b.tgt_in[:, 0], state).state
        cache = state.self_kv[0][0].clone()
        first = model.decode_step(b.tgt_in[:, 1], state)
        again = model.decode_step(b.tgt_in[:, 1], state)  # same state twice: beam search branches
        assert state.steps == 1 and torch.equal(state.self_kv[0][0], cache)
        torch.testing.assert_close(first.logits, again.logits, atol=0, rtol=0)
        assert first.cross_attentions is None

        index = torch.tensor([2, 0, 0])  # beams may shrink and repeat rows
        picked = state.reorder(index)
        reordered = model.decode_step(b.tgt_in[index, 1], picked)
    torch.testing.assert_close(reordered.logits, first.logits[index], atol=ATOL, rtol=0)
    assert torch.equal(picked.memory, state.memory[index]) and reordered.state.steps == 2
    assert reordered.state.self_kv[-1][1].shape == (3, 4, 2, 8)


def test_padded_batch_gives_each_sentence_its_own_outputs() -> None:
    model, b = make_model(), make_batch()
    with torch.no_grad():
        batched = model(b, return_attention=True)
        for i, (s, t) in enumerate(zip(b.src_lengths.tolist(), b.tgt_lengths.tolist(), strict=True)):
            one = SimpleNamespace(
                src=b.src[i : i + 1, :s], src_lengths=b.src_lengths[i : i + 1], tgt_in=b.tgt_in[i : i + 1, :t]
            )
            alone = model(one, return_attention=True)
            torch.testing.assert_close(batched.logits[i, :t], alone.logits[0], atol=ATOL, rtol=0)
            cross = batched.cross_attentions[-1][i, :, :t, :s]
            torch.testing.assert_close(cross, alone.cross_attentions[-1][0], atol=ATOL, rtol=0)


# ------------------------------------------------------------------------------- embeddings, tying, config
def test_sinusoidal_table_follows_the_paper() -> None:
    table = sinusoidal_table(50, 16)
    pos, i = 7, 3
    assert table[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 16)), abs=1e-6)
    assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 16)), abs=1e-6)
    assert sinusoidal_table(4, 7).shape == (4, 7)  # odd sizes work too


def test_embedding_scales_tokens_and_adds_positions() -> None:
    embed = TransformerEmbedding(10, 16, positional="sinusoidal", max_positions=8, dropout=0.0)
    tokens = torch.tensor([[3, 4, 5]])
    expected = embed.tokens.weight[tokens] * 4.0 + sinusoidal_table(8, 16)[:3]  # sqrt(16) = 4
    torch.testing.assert_close(embed(tokens), expected)


def test_embedding_offset_and_position_limit() -> None:
    embed = TransformerEmbedding(10, 16, positional="learned", max_positions=8, dropout=0.0)
    tokens = torch.tensor([[3, 4, 5]])
    torch.testing.assert_close(embed(tokens)[:, 2], embed(tokens[:, 2:], start=2)[:, 0])
    assert torch.all(embed.tokens.weight[PAD] == 0)
    with pytest.raises(ValueError, match="max_positions=8"):
        embed(torch.ones(1, 9, dtype=torch.long))


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once


def test_tying_shares_storage_and_saves_parameters() -> None:
    V, D = 20, SIZES["d_model"]
    untied, decoder, three_way = (make_model(tie_embeddings=t) for t in ("none", "decoder", "three_way"))
    assert decoder.generator.weight.data_ptr() == decoder.tgt_embed.tokens.weight.data_ptr()
    assert decoder.src_embed.tokens.weight.data_ptr() != decoder.tgt_embed.tokens.weight.data_ptr()
    shared = {three_way.src_embed.tokens.weight.data_ptr(), three_way.generator.weight.data_ptr()}
    assert shared == {three_way.tgt_embed.tokens.weight.data_ptr()}
    assert count(untied) - count(decoder) == V * D
    assert count(untied) - count(three_way) == 2 * V * D


def test_three_way_tying_needs_one_vocabulary_size() -> None:
    with pytest.raises(ValueError, match="three_way.*20.*30"):
        Transformer(20, 30, tie_embeddings="three_way", **SIZES)


def test_build_transformer_reads_the_model_config() -> None:
    from attnlab.config import ModelConfig

    cfg = ModelConfig(
        arch="transformer",
        d_model=32,
        heads=2,
        enc_layers=1,
        dec_layers=3,
        ffn_dim=48,
        norm="pre",
        positional="learned",
        activation="gelu",
        max_positions=40,
        tie_embeddings="decoder",
    )
    model = build_transformer(cfg, 11, 13)
    assert [name for name, _ in model.named_children()] == [
        "src_embed",
        "tgt_embed",
        "encoder",
        "decoder",
        "generator",
    ]
    assert len(model.encoder.layers) == 1 and len(model.decoder.layers) == 3
    assert model.decoder.layers[0].self_attn.heads == 2
    assert model.tgt_embed.positions.weight.shape == (40, 32)
    assert model.generator.weight is model.tgt_embed.tokens.weight


def test_build_model_dispatches_to_the_transformer() -> None:
    from attnlab.config import ModelConfig
    from attnlab.models.build import build_model

    model = build_model(ModelConfig(arch="transformer", **SIZES), 11, 13)
    assert isinstance(model, Transformer) and model.generator.out_features == 13


@pytest.mark.parametrize("tie", ["none", "decoder", "three_way"])
def test_model_summary_counts_each_part_and_shared_matrices_once(tie: str) -> None:
    from attnlab.models.summary import model_summary

    model = make_model(tie_embeddings=tie)
    summary = model_summary(model)
    parts = {k: v for k, v in summary.items() if k not in ("encoder_side", "decoder_side", "total")}
    assert list(parts) == ["src_embed", "tgt_embed", "encoder", "decoder", "generator"]
    assert summary["total"] == sum(parts.values()) == count(model)
    assert summary["encoder_side"] == parts["src_embed"] + parts["encoder"]
    if tie != "none":
        assert parts["generator"] == 20  # only its bias: the weight is counted with an embedding
