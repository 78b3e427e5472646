"""The RNN encoder (reversal, packing, final states) and the bridges to the decoder."""

from __future__ import annotations

import pytest
import torch

from attnlab.models.bridges import Bridge, map_layers
from attnlab.models.options import BRIDGES, LAYER_MISMATCH, decoder_hidden_size
from attnlab.models.rnn_encoder import RNNEncoder, reverse_padded

E, H = 5, 6
LENGTHS = torch.tensor([4, 7, 1, 3])


def embedded(seed: int = 0) -> torch.Tensor:
    """(B, S, E) with garbage (not zeros) in the padding, which packing must ignore."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(len(LENGTHS), int(LENGTHS.max()), E, generator=g)


def encoder(cell: str = "gru", bidirectional: bool = True, layers: int = 2, **kwargs) -> RNNEncoder:
    torch.manual_seed(0)
    return RNNEncoder(cell, E, H, layers, 0.0, bidirectional, **kwargs).eval()


def test_reverse_padded_reverses_real_tokens_only() -> None:
    tokens = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]])
    reversed_ = reverse_padded(tokens, torch.tensor([3, 2, 4]))
    assert reversed_.tolist() == [[3, 2, 1, 0], [5, 4, 0, 0], [9, 8, 7, 6]]
    assert torch.equal(reverse_padded(reversed_, torch.tensor([3, 2, 4])), tokens)
    x = torch.randn(3, 4, 2)  # works on trailing feature axes too
    assert torch.equal(reverse_padded(x, torch.tensor([3, 2, 4]))[1, :2], x[1, :2].flip(0))


@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_final_state_is_the_last_real_tokens(cell: str, bidirectional: bool) -> None:
    enc = encoder(cell, bidirectional)
    x = embedded()
    outputs, states = enc(x, LENGTHS)
    dirs = 2 if bidirectional else 1
    assert outputs.shape == (len(LENGTHS), x.size(1), dirs * H)
    assert len(states) == (2 if cell == "lstm" else 1)
    assert all(s.shape == (2, dirs, len(LENGTHS), H) for s in states)
    for b, n in enumerate(LENGTHS.tolist()):
        alone_out, alone_states = enc(x[b : b + 1, :n], LENGTHS[b : b + 1])  # unpadded
        torch.testing.assert_close(outputs[b, :n], alone_out[0], atol=1e-6, rtol=1e-5)
        assert (outputs[b, n:] == 0).all()
        for s, alone in zip(states, alone_states, strict=True):
            torch.testing.assert_close(s[:, :, b], alone[:, :, 0], atol=1e-6, rtol=1e-5)
    # the top layer's h is its output at the last real token (forward) and at the first (backward)
    top_h = states[0][-1]  # (dirs, B, H)
    last = outputs[torch.arange(len(LENGTHS)), LENGTHS - 1]  # (B, dirs * H)
    torch.testing.assert_close(top_h[0], last[:, :H])
    if bidirectional:
        torch.testing.assert_close(top_h[1], outputs[:, 0, H:])


def test_unpacked_encoder_reads_the_padding() -> None:
    x = embedded()
    _, packed_states = encoder(packed=True)(x, LENGTHS)
    padded_outputs, padded_states = encoder(packed=False)(x, LENGTHS)
    full = LENGTHS == LENGTHS.max()
    torch.testing.assert_close(padded_states[0][:, :, full], packed_states[0][:, :, full])
    assert not torch.allclose(padded_states[0][:, :, ~full], packed_states[0][:, :, ~full])
    # forward-direction final state is the output after the last padded position
    torch.testing.assert_close(padded_states[0][-1, 0], padded_outputs[:, -1, :H])


@pytest.mark.parametrize("packed", [True, False])
def test_reverse_src_reads_reversed_tokens_and_returns_source_order(packed: bool) -> None:
    x = embedded()
    outputs, states = encoder(reverse_src=True, packed=packed)(x, LENGTHS)
    ref_outputs, ref_states = encoder(reverse_src=False, packed=packed)(reverse_padded(x, LENGTHS), LENGTHS)
    mask = torch.arange(x.size(1)) < LENGTHS.unsqueeze(1)
    torch.testing.assert_close(outputs[mask], reverse_padded(ref_outputs, LENGTHS)[mask])
    torch.testing.assert_close(states[0], ref_states[0])


def test_encoder_dropout_is_active_in_training_only() -> None:
    torch.manual_seed(0)
    enc = RNNEncoder("gru", E, H, 2, 0.5, True)
    x = embedded()
    assert not torch.equal(enc(x, LENGTHS)[0], enc(x, LENGTHS)[0])
    enc.eval()
    assert torch.equal(enc(x, LENGTHS)[0], enc(x, LENGTHS)[0])


# ---------------------------------------------------------------------------------------- bridges


def states(layers: int = 2, dirs: int = 2, batch: int = 3, hid: int = H) -> torch.Tensor:
    return torch.randn(layers, dirs, batch, hid, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("kind", BRIDGES)
@pytest.mark.parametrize("num_states", [1, 2])
def test_direction_bridges(kind: str, num_states: int) -> None:
    bridge = Bridge(kind, H, bidirectional=True, num_states=num_states, enc_layers=2, dec_layers=2)
    enc = tuple(states() + i for i in range(num_states))
    out = bridge(enc)
    dec_hid = decoder_hidden_size(H, True, kind)
    assert dec_hid == (2 * H if kind == "concat" else H) == bridge.dec_hid
    assert len(out) == num_states and all(o.shape == (2, 3, dec_hid) for o in out)
    f, b = enc[-1][:, 0], enc[-1][:, 1]
    expected = {
        "concat": torch.cat([f, b], -1),
        "sum": f + b,
        "average": (f + b) / 2,
        "none": torch.zeros_like(f),
        "stack": enc[-1][1],  # layers [l0 fwd, l0 bwd, l1 fwd, l1 bwd]; 'last' keeps the top two
    }
    if kind in expected:
        torch.testing.assert_close(out[-1], expected[kind])
    else:  # linear, tanh, affine: one projection per state tensor, squashed by tanh: all (linear), h only, none
        assert len(bridge.direction_proj) == num_states
        for index, (state, result) in enumerate(zip(enc, out, strict=True)):
            projected = bridge.direction_proj[index](torch.cat([state[:, 0], state[:, 1]], -1))
            squashed = kind == "linear" or (kind == "tanh" and index == 0)
            torch.testing.assert_close(result, torch.tanh(projected) if squashed else projected)


@pytest.mark.parametrize("kind", ["linear", "tanh", "affine"])
def test_which_learned_bridges_bound_h_and_c(kind: str) -> None:
    bridge = Bridge(kind, H, bidirectional=True, num_states=2)
    with torch.no_grad():
        for projection in bridge.direction_proj:
            projection.weight.fill_(1.0)
    h, c = bridge((states(layers=1) + 5, states(layers=1) + 5))
    assert (h.abs().max() <= 1) == (kind in ("linear", "tanh"))
    assert (c.abs().max() <= 1) == (kind == "linear")


@pytest.mark.parametrize("kind", BRIDGES)
def test_unidirectional_bridge_is_identity_except_none(kind: str) -> None:
    bridge = Bridge(kind, H, bidirectional=False, enc_layers=2, dec_layers=2)
    enc = states(dirs=1)
    (out,) = bridge((enc,))
    expected = torch.zeros_like(enc[:, 0]) if kind == "none" else enc[:, 0]
    assert torch.equal(out, expected)
    assert bridge.memory_proj is None and list(bridge.parameters()) == []


@pytest.mark.parametrize("kind", BRIDGES)
def test_memory_is_projected_to_the_decoder_size(kind: str) -> None:
    bridge = Bridge(kind, H, bidirectional=True)
    outputs = torch.randn(3, 5, 2 * H)
    assert bridge.project_memory(outputs).shape == (3, 5, bridge.dec_hid)
    assert (bridge.memory_proj is None) == (kind == "concat")


def test_layer_mismatch_modes() -> None:
    enc = torch.arange(3.0).view(3, 1, 1).expand(3, 2, 4)  # layer i holds the value i
    layers = lambda mode, n: map_layers(enc, n, mode)[:, 0, 0].tolist()  # noqa: E731
    assert layers("last", 2) == [1, 2] and layers("last", 5) == [0, 1, 2, 2, 2]
    assert layers("first", 2) == [0, 1] and layers("first", 4) == [0, 1, 2, 2]
    assert layers("repeat", 6) == [0, 1, 2, 0, 1, 2] and layers("repeat", 4) == [0, 1, 2, 0]
    assert layers("zeros", 5) == [0, 1, 2, 0, 0] and layers("zeros", 1) == [2]
    assert layers("average", 2) == [1, 1] and layers("average", 3) == [1, 1, 1]
    for mode in ("last", "first", "repeat", "zeros"):
        assert layers(mode, 3) == [0, 1, 2]
    weight = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    assert map_layers(enc, 2, "linear", weight)[:, 0, 0].tolist() == [0, 1.5]


@pytest.mark.parametrize("mode", LAYER_MISMATCH)
@pytest.mark.parametrize("enc_layers,dec_layers", [(1, 2), (2, 4), (3, 2), (2, 2)])
def test_bridge_layer_counts_for_lstm(mode: str, enc_layers: int, dec_layers: int) -> None:
    bridge = Bridge("sum", H, True, num_states=2, enc_layers=enc_layers, dec_layers=dec_layers,
                    layer_mismatch=mode)  # fmt: skip
    h, c = bridge((states(enc_layers), states(enc_layers) * 2))
    assert h.shape == c.shape == (dec_layers, 3, H)
    if mode == "linear":
        assert bridge.layer_weight.shape == (dec_layers, enc_layers)
        (h.sum() + c.sum()).backward()
        assert bridge.layer_weight.grad is not None


def test_stack_bridge_hands_each_direction_to_its_own_decoder_layer() -> None:
    """A decoder with twice the encoder's layers gets torch's h_n order: l0 fwd, l0 bwd, l1 fwd, l1 bwd."""
    enc = states(layers=2)
    h, c = Bridge("stack", H, bidirectional=True, num_states=2, enc_layers=2, dec_layers=4)((enc, enc * 2))
    assert torch.equal(h, enc.flatten(0, 1)) and torch.equal(c, 2 * enc.flatten(0, 1))
    mixed = Bridge("stack", H, bidirectional=True, enc_layers=2, dec_layers=3, layer_mismatch="linear")
    assert mixed.layer_weight.shape == (3, 4) and mixed((enc,))[0].shape == (3, 3, H)


def test_unknown_bridge_options_raise() -> None:
    with pytest.raises(ValueError, match="bridge 'mean' is unknown"):
        Bridge("mean", H)
    with pytest.raises(ValueError, match="layer_mismatch 'top' is unknown"):
        Bridge("sum", H, layer_mismatch="top")
    with pytest.raises(ValueError, match="RNN cell 'transformer' is unknown"):
        RNNEncoder("transformer", E, H)
