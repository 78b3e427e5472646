"""Heatmaps: labels and cell values read back from the figure, special tokens, grids, saving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from attnlab.viz import plot_attention, plot_attention_grid, plot_before_after, save_figure


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _image_axes(fig: Figure) -> list:
    """Axes that show a heatmap (colour bars draw a mesh, not an image)."""
    return [ax for ax in fig.axes if ax.images]


def _labels(ax, axis: str) -> list[str]:
    ticks = ax.get_xticklabels() if axis == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks]


def test_known_matrix_has_labels_in_order_and_cell_values():
    weights = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    fig = plot_attention(weights, ["le", "chat", "noir"], ["black", "cat"], title="t")
    (ax,) = _image_axes(fig)
    assert _labels(ax, "x") == ["le", "chat", "noir"]
    assert _labels(ax, "y") == ["black", "cat"]
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), weights)
    assert len(fig.axes) == 2  # the map and its colour bar
    assert len(plot_attention(weights, ["a", "b", "c"], ["x", "y"], colorbar=False).axes) == 1


def test_padding_and_specials_are_dropped_consistently_unless_asked():
    src = ["<bos>", "le", "chat", "<unk>", "<eos>", "<pad>"]
    tgt = ["the", "cat", "<eos>", "<pad>"]
    rng = np.random.default_rng(0)
    weights = _softmax(rng.normal(size=(4, 6)))
    (ax,) = _image_axes(plot_attention(weights, src, tgt))
    assert _labels(ax, "x") == ["le", "chat", "<unk>"]  # <unk> is a real word, kept
    assert _labels(ax, "y") == ["the", "cat"]
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), weights[:2, 1:4])

    (ax,) = _image_axes(plot_attention(weights, src, tgt, show_special=True))
    assert _labels(ax, "x") == src
    assert _labels(ax, "y") == tgt
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), weights)


def test_accepts_torch_slices_and_a_given_axes():
    weights = torch.tensor([[[[0.5, 0.5], [1.0, 0.0]]]])  # (batch 1, head 1, q, k)
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_attention(weights, ["a", "b"], ["x", "y"], ax=ax) is fig
    np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), weights[0, 0].numpy())


def test_token_count_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="needs 2 query and 3 key tokens"):
        plot_attention(np.full((2, 3), 1 / 3), ["a", "b"], ["x", "y"])


def test_long_sentences_get_bigger_figures_and_rotated_labels():
    tokens = [f"w{i}" for i in range(40)]
    small = plot_attention(np.eye(5), tokens[:5], tokens[:5])
    large = plot_attention(np.eye(40), tokens, tokens)
    assert large.get_figwidth() > small.get_figwidth() and large.get_figheight() > small.get_figheight()
    (ax,) = _image_axes(large)
    labels = ax.get_xticklabels()
    assert all(label.get_rotation() == 90 for label in labels)
    assert all(label.get_fontsize() >= 6 for label in labels)


def test_grid_has_layers_times_heads_panels_with_a_shared_scale():
    rng = np.random.default_rng(1)
    src, tgt = ["a", "b", "c", "<eos>"], ["<bos>", "x", "y"]
    cross = tuple(torch.tensor(_softmax(rng.normal(size=(2, 3, 3, 4)))) for _ in range(2))  # (B, H, T, S)
    fig = plot_attention_grid(cross, src, tgt, kind="cross", index=1)
    axes = _image_axes(fig)
    assert len(axes) == 2 * 3
    assert len(fig.axes) == 2 * 3 + 1  # one shared colour bar
    assert len({ax.images[0].get_clim() for ax in axes}) == 1
    np.testing.assert_allclose(np.asarray(axes[0].images[0].get_array()), cross[0][1, 0].numpy()[1:, :3])
    assert _labels(axes[-1], "x") == ["a", "b", "c"]
    assert _labels(axes[0], "y") == ["x", "y"]


def test_grid_of_self_attention_uses_one_side_for_both_axes():
    src, tgt = ["a", "b", "c"], ["x", "y"]
    encoder = (np.full((2, 3, 3), 1 / 3),)  # one sentence: (heads, S, S)
    axes = _image_axes(plot_attention_grid(encoder, src, tgt, kind="encoder"))
    assert len(axes) == 2 and _labels(axes[0], "x") == src and _labels(axes[0], "y") == src
    decoder = (np.tril(np.ones((2, 2))) / np.array([[1.0], [2.0]]),)  # bare (T, T): one head
    (ax,) = _image_axes(plot_attention_grid(decoder, src, tgt, kind="decoder"))
    assert _labels(ax, "x") == tgt and _labels(ax, "y") == tgt


def test_rnn_map_is_a_single_panel():
    cross = (torch.full((3, 1, 2, 4), 0.25),)  # RNN family: one "layer", one head
    fig = plot_attention_grid(cross, ["a", "b", "c", "d"], ["x", "y"], index=0)
    assert len(_image_axes(fig)) == 1


def test_before_after_pairs_initial_and_trained_per_head():
    rng = np.random.default_rng(2)
    init = tuple(_softmax(rng.normal(size=(2, 3, 4))) for _ in range(2))  # 2 layers x (H=2, T, S)
    trained = tuple(_softmax(5 * rng.normal(size=(2, 3, 4))) for _ in range(2))
    fig = plot_before_after(init, trained, ["a", "b", "c", "d"], ["x", "y", "z"])
    axes = _image_axes(fig)
    assert len(axes) == 2 * 2 * 2
    assert axes[0].get_title().endswith("initial") and axes[1].get_title().endswith("trained")
    np.testing.assert_allclose(np.asarray(axes[3].images[0].get_array()), trained[0][1])
    assert len({ax.images[0].get_clim() for ax in axes}) == 1
    with pytest.raises(ValueError, match="differ"):
        plot_before_after(init[:1], trained, ["a", "b", "c", "d"], ["x", "y", "z"])


def test_save_figure_writes_every_format(tmp_path):
    fig = plot_attention(np.eye(3), ["a", "b", "c"], ["x", "y", "z"])
    paths = save_figure(fig, tmp_path / "sub" / "run.v2")
    assert [p.name for p in paths] == ["run.v2.png", "run.v2.svg", "run.v2.pdf"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[0].read_bytes().startswith(b"\x89PNG") and paths[2].read_bytes().startswith(b"%PDF")
