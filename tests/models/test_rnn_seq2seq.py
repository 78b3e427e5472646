"""The RNN seq2seq model: every option builds and trains, batching and decoding match training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest
import torch

from attnlab.config import ModelConfig
from attnlab.models.build import build_model
from attnlab.models.options import ATTENTION_KINDS, BRIDGES
from attnlab.models.rnn_encoder import reverse_padded
from attnlab.models.rnn_seq2seq import RNNSeq2Seq
from attnlab.models.summary import format_summary, model_summary

SRC_V, TGT_V = 13, 11
ATTENTIONS = [k for k in ATTENTION_KINDS if k != "none"]


@dataclass
class Batch:
    src: torch.Tensor  # (B, S)
    src_lengths: torch.Tensor  # (B,)
    tgt_in: torch.Tensor  # (B, T)
    tgt_lengths: torch.Tensor  # (B,)

    def row(self, b: int) -> Batch:
        """Row ``b`` alone, without padding."""
        s, t = int(self.src_lengths[b]), int(self.tgt_lengths[b])
        return Batch(self.src[b : b + 1, :s], self.src_lengths[b : b + 1], self.tgt_in[b : b + 1, :t],
                     self.tgt_lengths[b : b + 1])  # fmt: skip


def padded(lengths: list[int], vocab: int, g: torch.Generator) -> torch.Tensor:
    tokens = torch.randint(1, vocab, (len(lengths), max(lengths)), generator=g)
    return tokens.masked_fill(torch.arange(max(lengths)) >= torch.tensor(lengths).unsqueeze(1), 0)


def make_batch(src_lengths=(5, 7, 2, 4), tgt_lengths=(4, 6, 3, 1), seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    # source ids stay below both vocabulary sizes, so three-way tied models (vocab TGT_V) read them too
    return Batch(padded(list(src_lengths), min(SRC_V, TGT_V), g), torch.tensor(src_lengths),
                 padded(list(tgt_lengths), TGT_V, g), torch.tensor(tgt_lengths))  # fmt: skip


def config(**overrides) -> ModelConfig:
    base = dict(emb_dim=6, hid_dim=8, dropout=0.0, bidirectional=True, cell="lstm", attention="general")
    if overrides.get("attention") == "multihead":
        base["attention_heads"] = 2
    return ModelConfig(**{**base, **overrides})


def model(seed: int = 0, src_vocab: int = SRC_V, tgt_vocab: int = TGT_V, **overrides) -> RNNSeq2Seq:
    torch.manual_seed(seed)
    return build_model(config(**overrides), src_vocab, tgt_vocab).eval()


def train_once(m: torch.nn.Module, **forward_kwargs) -> None:
    """One forward and backward in training mode; every parameter must get a gradient."""
    m.train()
    batch = make_batch()
    logits = m(batch, **forward_kwargs).logits
    assert logits.shape == (*batch.tgt_in.shape, TGT_V) and torch.isfinite(logits).all()
    logits.logsumexp(-1).sum().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient for {name}"


# ----------------------------------------------------------------------------- every option runs


@pytest.mark.parametrize("attention", ATTENTION_KINDS)
@pytest.mark.parametrize("placement", ["luong", "bahdanau"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_attention_placement_cell_grid(attention: str, placement: str, cell: str) -> None:
    train_once(model(attention=attention, attention_placement=placement, cell=cell, dropout=0.2))


@pytest.mark.parametrize("bridge", ["concat", "sum", "average", "linear", "tanh", "affine", "none", "stack"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
def test_bridge_grid(bridge: str, bidirectional: bool, cell: str) -> None:
    m = model(bridge=bridge, bidirectional=bidirectional, cell=cell)
    dec_hid = 16 if bidirectional and bridge == "concat" else 8
    assert m.decoder.hid_dim == dec_hid
    train_once(m)


@pytest.mark.parametrize("mode", ["last", "first", "repeat", "zeros", "average", "linear"])
@pytest.mark.parametrize("enc_layers,dec_layers", [(1, 2), (2, 4), (3, 2)])
def test_layer_mismatch_grid(mode: str, enc_layers: int, dec_layers: int) -> None:
    m = model(layer_mismatch=mode, enc_layers=enc_layers, dec_layers=dec_layers, dropout=0.1)
    assert m.decoder.rnn.num_layers == dec_layers
    train_once(m)


@pytest.mark.parametrize("tie", ["none", "decoder", "three_way"])
@pytest.mark.parametrize("bidirectional,emb_dim", [(False, 8), (True, 8), (False, 5)])
def test_tying_grid(tie: str, bidirectional: bool, emb_dim: int) -> None:
    train_once(model(tie_embeddings=tie, bidirectional=bidirectional, emb_dim=emb_dim, src_vocab=TGT_V))


@pytest.mark.parametrize("reverse_src", [False, True])
@pytest.mark.parametrize("packed", [False, True])
@pytest.mark.parametrize("input_feeding", [False, True])
def test_source_options_and_input_feeding(reverse_src: bool, packed: bool, input_feeding: bool) -> None:
    train_once(model(reverse_src=reverse_src, packed=packed, input_feeding=input_feeding, cell="gru"))


@pytest.mark.parametrize("mode", ["step", "sequence"])
def test_scheduled_sampling_trains(mode: str) -> None:
    train_once(model(), teacher_forcing=0.5, teacher_forcing_mode=mode)


@pytest.mark.parametrize(
    "overrides,key",
    [
        (dict(attention="multihead", attention_heads=3), "model.attention_heads"),
        (dict(attention="general", attention_heads=2), "model.attention_heads"),
        (dict(input_feeding=True, attention_placement="bahdanau"), "model.input_feeding"),
        (dict(input_feeding=True, attention="none"), "model.input_feeding"),
        (dict(attention="none", bridge="none"), "model.attention"),
        (dict(tie_embeddings="three_way"), "model.tie_embeddings"),  # SRC_V != TGT_V
        (dict(cell="lstmm"), "model.cell"),
        (dict(bridge="mean"), "model.bridge"),
        (dict(attention="luong"), "model.attention"),
        (dict(attention_placement="both"), "model.attention_placement"),
        (dict(layer_mismatch="top"), "model.layer_mismatch"),
        (dict(dropout=1.0), "model.dropout"),
        (dict(enc_layers=0), "model.enc_layers"),
        (dict(arch="cnn"), "model.arch"),
    ],
)
def test_invalid_combinations_name_the_key(overrides: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key.replace(".", r"\.")):
        model(**overrides)


# ------------------------------------------------------------------- outputs, batching, decoding


def test_cross_attentions_follow_the_hf_layout() -> None:
    batch = make_batch()
    B, S, T = *batch.src.shape[:1], batch.src.size(1), batch.tgt_in.size(1)
    m = model(attention="multihead", attention_heads=4)
    out = m(batch, return_attention=True)
    assert len(out.cross_attentions) == 1 and out.cross_attentions[0].shape == (B, 4, T, S)
    assert m(batch).cross_attentions is None
    assert model(attention="none")(batch, return_attention=True).cross_attentions is None
    step = m.decode_step(batch.tgt_in[:, 0], m.encode(batch.src, batch.src_lengths), return_attention=True)
    assert step.logits.shape == (B, TGT_V) and step.cross_attentions[0].shape == (B, 4, 1, S)


@pytest.mark.parametrize("attention", ATTENTION_KINDS)
@pytest.mark.parametrize("placement", ["luong", "bahdanau"])
def test_a_sentence_alone_and_in_a_padded_batch_agree(attention: str, placement: str) -> None:
    m = model(attention=attention, attention_placement=placement, packed=True, reverse_src=True)
    batch = make_batch()
    out = m(batch, return_attention=True)
    for b in range(len(batch.src)):
        row = batch.row(b)
        alone = m(row, return_attention=True)
        t, s = row.tgt_in.size(1), row.src.size(1)
        torch.testing.assert_close(alone.logits[0], out.logits[b, :t], atol=1e-5, rtol=1e-5)
        if attention != "none":
            weights = out.cross_attentions[0][b, :, :t]  # (heads, t, S)
            torch.testing.assert_close(alone.cross_attentions[0][0], weights[..., :s], atol=1e-5, rtol=1e-5)
            assert (weights[..., s:] == 0).all()
            torch.testing.assert_close(weights.sum(-1), torch.ones(weights.shape[:-1]))


@pytest.mark.parametrize("attention", ATTENTION_KINDS)
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_fast_path_equals_step_loop(attention: str, cell: str) -> None:
    m = model(attention=attention, cell=cell, dec_layers=2, layer_mismatch="repeat")
    assert m.decoder.parallel
    batch = make_batch()
    state = m.encode(batch.src, batch.src_lengths)
    fast_logits, fast_weights = m.teacher_forced(state, batch.tgt_in)
    loop_logits, loop_weights = m.unroll(state, batch.tgt_in, 1.0, return_attention=True)
    torch.testing.assert_close(fast_logits, loop_logits, atol=1e-5, rtol=1e-5)
    if attention != "none":
        torch.testing.assert_close(fast_weights, loop_weights, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "overrides,parallel",
    [({}, True), ({"attention": "none"}, True), ({"input_feeding": True}, False),
     ({"attention_placement": "bahdanau"}, False)],
)  # fmt: skip
def test_forward_takes_the_fast_path_when_it_can(overrides: dict, parallel: bool, monkeypatch) -> None:
    m = model(**overrides)
    assert m.decoder.parallel == parallel
    calls = []
    step = m.decoder.step
    monkeypatch.setattr(m.decoder, "step", lambda *a: calls.append(1) or step(*a))
    batch = make_batch()
    m(batch)
    assert len(calls) == (0 if parallel else batch.tgt_in.size(1))
    m(batch, teacher_forcing=0.5)  # sampling always needs the loop
    assert len(calls) == (1 if parallel else 2) * batch.tgt_in.size(1)


def record_decoder_inputs(m: RNNSeq2Seq) -> list[torch.Tensor]:
    """Token ids the target embedding receives, one (B,) tensor per decoding step."""
    seen: list[torch.Tensor] = []
    m.tgt_embed.register_forward_hook(lambda module, args, out: seen.append(args[0].clone()))
    return seen


@pytest.mark.parametrize("overrides", [{}, {"attention_placement": "bahdanau"}, {"input_feeding": True}])
def test_ratio_zero_feeds_back_the_models_own_predictions(overrides: dict) -> None:
    m = model(**overrides)
    batch = make_batch()
    inputs = record_decoder_inputs(m)
    logits = m(batch, teacher_forcing=0.0).logits
    for t in range(1, batch.tgt_in.size(1)):
        assert torch.equal(inputs[t], logits[:, t - 1].argmax(-1))
    other = dataclasses.replace(batch, tgt_in=batch.tgt_in.clone())
    other.tgt_in[:, 1:] = torch.randint(1, TGT_V, other.tgt_in[:, 1:].shape)
    torch.testing.assert_close(m(other, teacher_forcing=0.0).logits, logits)  # gold tokens unused
    # greedy decoding with decode_step from <bos> reproduces the free-running logits
    state, tokens = m.encode(batch.src, batch.src_lengths), batch.tgt_in[:, 0]
    for t in range(batch.tgt_in.size(1)):
        step = m.decode_step(tokens, state)
        torch.testing.assert_close(step.logits, logits[:, t], atol=1e-5, rtol=1e-5)
        state, tokens = step.state, step.logits.argmax(-1)


def test_step_mode_flips_one_coin_per_step_and_sequence_mode_one_per_row() -> None:
    m = model()
    batch = make_batch(src_lengths=[5] * 8, tgt_lengths=[7] * 8, seed=3)
    gold = m(batch).logits
    free = m(batch, teacher_forcing=0.0).logits
    torch.manual_seed(1)
    mixed = m(batch, teacher_forcing=0.5, teacher_forcing_mode="sequence").logits
    is_gold = [torch.allclose(mixed[b], gold[b], atol=1e-5) for b in range(8)]
    is_free = [torch.allclose(mixed[b], free[b], atol=1e-5) for b in range(8)]
    assert all(g or f for g, f in zip(is_gold, is_free, strict=True)) and any(is_gold) and any(is_free)

    inputs = record_decoder_inputs(m)
    torch.manual_seed(2)
    logits = m(batch, teacher_forcing=0.5, teacher_forcing_mode="step").logits
    kinds = set()
    for t in range(1, batch.tgt_in.size(1)):
        from_gold = torch.equal(inputs[t], batch.tgt_in[:, t])
        from_model = torch.equal(inputs[t], logits[:, t - 1].argmax(-1))
        assert from_gold or from_model  # the whole batch takes the same side at each step
        kinds.add("gold" if from_gold else "model")
    assert kinds == {"gold", "model"}


def test_teacher_forcing_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="teacher_forcing"):
        model()(make_batch(), teacher_forcing=1.5)
    with pytest.raises(ValueError, match="teacher_forcing_mode"):
        model()(make_batch(), teacher_forcing_mode="row")


@pytest.mark.parametrize(
    ("attention", "overrides"),
    [(kind, extra) for kind in ATTENTION_KINDS
     for extra in ({"attention_placement": "luong"}, {"attention_placement": "bahdanau"}, {"input_feeding": True})
     if kind != "none" or "input_feeding" not in extra],  # input feeding needs attention
)
def test_decode_step_with_gold_tokens_reproduces_forward(attention: str, overrides: dict) -> None:
    m = model(attention=attention, cell="gru", dec_layers=2, **overrides)
    batch = make_batch()
    out = m(batch, return_attention=True)
    state = m.encode(batch.src, batch.src_lengths)
    for t in range(batch.tgt_in.size(1)):
        step = m.decode_step(batch.tgt_in[:, t], state, return_attention=True)
        torch.testing.assert_close(step.logits, out.logits[:, t], atol=1e-5, rtol=1e-5)
        if attention != "none":
            torch.testing.assert_close(step.cross_attentions[0][:, :, 0], out.cross_attentions[0][:, :, t])
        state = step.state


@pytest.mark.parametrize("overrides", [{"cell": "lstm", "input_feeding": True}, {"cell": "gru"}])
def test_reorder_selects_rows_of_the_whole_state(overrides: dict) -> None:
    m = model(attention="multihead", **overrides)
    batch = make_batch()
    state = m.decode_step(batch.tgt_in[:, 0], m.encode(batch.src, batch.src_lengths)).state
    index = torch.tensor([2, 2, 0, 3, 1])
    reordered = state.reorder(index)
    assert reordered.src_mask.shape[0] == reordered.hidden[0].shape[1] == 5
    step = m.decode_step(batch.tgt_in[index, 1], reordered)
    expected = m.decode_step(batch.tgt_in[:, 1], state).logits[index]
    torch.testing.assert_close(step.logits, expected)


@pytest.mark.parametrize("placement", ["luong", "bahdanau"])
def test_reverse_src_weights_align_with_the_original_source(placement: str) -> None:
    batch = make_batch()
    reversed_model = model(reverse_src=True, attention_placement=placement)
    plain_model = model(reverse_src=False, attention_placement=placement)  # same seed, same weights
    out = reversed_model(batch, return_attention=True)
    flipped = dataclasses.replace(batch, src=reverse_padded(batch.src, batch.src_lengths))
    ref = plain_model(flipped, return_attention=True)  # reads the same order, attends in flipped order
    torch.testing.assert_close(out.logits, ref.logits, atol=1e-5, rtol=1e-5)
    ref_weights = ref.cross_attentions[0].permute(0, 3, 1, 2)  # (B, S, heads, T)
    ref_weights = reverse_padded(ref_weights, batch.src_lengths).permute(0, 2, 3, 1)  # (B, heads, T, S)
    torch.testing.assert_close(out.cross_attentions[0], ref_weights, atol=1e-6, rtol=1e-5)


# ---------------------------------------------------------------------------- tying and summary


def count(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())  # parameters() yields a shared one once


@pytest.mark.parametrize("emb_dim", [8, 5])
def test_tying_shares_storage_and_saves_the_expected_parameters(emb_dim: int) -> None:
    V, Hd = TGT_V, 8
    untied = model(emb_dim=emb_dim, bidirectional=False, src_vocab=V)
    dec = model(emb_dim=emb_dim, bidirectional=False, src_vocab=V, tie_embeddings="decoder")
    three = model(emb_dim=emb_dim, bidirectional=False, src_vocab=V, tie_embeddings="three_way")
    assert dec.generator.weight is dec.tgt_embed.weight and dec.generator.bias is None
    assert dec.src_embed.weight is not dec.tgt_embed.weight
    assert three.generator.weight is three.tgt_embed.weight is three.src_embed.weight
    assert three.generator.weight.data_ptr() == three.src_embed.weight.data_ptr()
    projection = 0 if emb_dim == Hd else Hd * emb_dim
    assert (dec.generator.proj is None) == (emb_dim == Hd)
    assert count(untied) - count(dec) == V * Hd + V - projection  # generator weight and bias
    assert count(dec) - count(three) == V * emb_dim  # the source embedding
    assert model_summary(three)["total"] == count(three)
    three.train()
    three(make_batch()).logits.sum().backward()  # one gradient, accumulated from three uses
    assert three.src_embed.weight.grad is three.generator.weight.grad


def test_summary_counts_parts_once_and_formats() -> None:
    m = model(tie_embeddings="three_way", src_vocab=TGT_V, emb_dim=16, hid_dim=16)
    summary = model_summary(m)
    parts = ["src_embed", "tgt_embed", "encoder", "bridge", "attention", "decoder", "generator"]
    assert list(summary)[: len(parts)] == parts
    assert summary["tgt_embed"] == 0 and summary["src_embed"] == TGT_V * 16  # counted at its first owner
    assert summary["total"] == count(m) == sum(summary[p] for p in parts)
    assert summary["encoder_side"] == summary["src_embed"] + summary["encoder"] + summary["bridge"]
    assert summary["encoder_side"] + summary["decoder_side"] == summary["total"]
    text = format_summary(summary)
    assert text.startswith("encoder ") and ", total " in text.splitlines()[0]
    assert all(p in text for p in parts)
    big = {"src_embed": 1_234_567, "encoder_side": 5_800_000, "decoder_side": 12_800_000, "total": 18_600_000}
    assert format_summary(big).splitlines()[0] == "encoder 5.8M, decoder 12.8M, total 18.6M"


def test_build_model_dispatches_on_arch() -> None:
    assert isinstance(model(), RNNSeq2Seq)
    transformer = build_model(ModelConfig(arch="transformer", d_model=16, heads=2, ffn_dim=32), 20, 20)
    summary = model_summary(transformer)
    assert summary["total"] == count(transformer) and summary["encoder_side"] > 0


@pytest.mark.parametrize("bridge", [b for b in BRIDGES if b != "none"])
def test_every_counted_parameter_is_used_without_attention(bridge: str) -> None:
    """A bidirectional encoder without attention has no memory to project: no Bridge.memory_proj is built,
    so the summary counts only parameters that train (and DDP needs no find_unused_parameters)."""
    dec_layers = 2 if bridge == "stack" else 1
    net = model(attention="none", bidirectional=True, bridge=bridge, dec_layers=dec_layers).train()
    assert net.bridge.memory_proj is None
    out = net(make_batch())
    out.logits.sum().backward()
    unused = [name for name, p in net.named_parameters() if p.grad is None]
    assert not unused, unused
    assert model_summary(net)["total"] == sum(p.numel() for p in net.parameters())
