"""The pretrained MiniLM as a particle system (nnips.pretrained, Chapter 2, "A real Transformer")."""

import pytest
import torch

from nnips import pretrained

# A text written for these tests, long enough to exceed the 128 tokens of the bundled truncation.
TEXT = " ".join(
    ["The ferry left the harbour at dawn, loaded with crates of apples, two bicycles and a sleeping dog."] * 7)


@pytest.fixture(scope="module")
def states():
    return pretrained.hidden_states(TEXT), pretrained.hidden_states(TEXT, dtype=torch.float64)


def test_text_is_not_truncated():
    tokens = pretrained.tokenize(TEXT)
    assert tokens["input_ids"].shape[1] == len(tokens["tokens"]) > 128
    assert tokens["tokens"][0] == "[CLS]" and tokens["tokens"][-1] == "[SEP]"


def test_hidden_states_shape(states):
    h32, h64 = states
    n = pretrained.tokenize(TEXT)["input_ids"].shape[1]
    assert h32.shape == h64.shape == (7, n, 384)
    assert h32.dtype == torch.float32 and h64.dtype == torch.float64


@pytest.mark.parametrize("layer", range(1, 7))
def test_explicit_layer_matches_the_library(states, layer):
    """The page's check: attention + LayerNorm + MLP + LayerNorm written out = the library's layer."""
    h32, h64 = states
    block = pretrained.Block(layer)
    assert (block(h64[layer - 1]) - h64[layer]).abs().max().item() < 1e-12
    assert (block(h32[layer - 1]) - h32[layer].double()).abs().max().item() < 1e-4


def test_attention_rows_are_probability_vectors_and_values_have_head_rank(states):
    block = pretrained.Block(1)
    A = block.attention_matrix(states[1][0])
    assert A.shape[0] == 12 and bool((A >= 0).all())
    torch.testing.assert_close(A.sum(-1), torch.ones(A.shape[:-1], dtype=torch.float64))
    assert torch.linalg.matrix_rank(block.V).max().item() <= 32


def test_layer_norm_puts_centred_tokens_on_a_sphere_before_the_affine_map(states):
    """LN(y) = gain * u + bias with u centred and of norm sqrt(384)."""
    block = pretrained.Block(2)
    y = block.attention(states[1][1])
    gain, bias = block.ln1
    u = (y - bias) / gain
    torch.testing.assert_close(u.mean(dim=-1), torch.zeros(len(u), dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(u.norm(dim=-1), torch.full((len(u),), 384**0.5, dtype=torch.float64),
                               atol=1e-6, rtol=0)


def test_iterate_and_cosines(states):
    block = pretrained.Block(6)
    xs = pretrained.iterate(block, states[1][0], 3)
    assert xs.shape == (4, *states[1][0].shape)
    torch.testing.assert_close(xs[1], block(states[1][0]))
    c = pretrained.cosines(xs[0])
    n = xs.shape[1] - 2
    assert c.shape == (n * (n - 1) // 2,) and bool((c.abs() <= 1 + 1e-12).all())


@pytest.mark.parametrize("call,error,match", [
    (lambda: pretrained.tokenize(""), ValueError, "text must be"),
    (lambda: pretrained.tokenize("word " * 600), ValueError, "positions"),
    (lambda: pretrained.hidden_states("a b", dtype=torch.float16), TypeError, "dtype"),
    (lambda: pretrained.Block(7), ValueError, "layer must be"),
    (lambda: pretrained.Block(1)(torch.zeros(3, 10)), ValueError, "x must have shape"),
    (lambda: pretrained.iterate("block", torch.zeros(3, 384), 2), TypeError, "block must be"),
    (lambda: pretrained.cosines(torch.zeros(3)), ValueError, "x must have shape"),
])
def test_bad_input_is_rejected(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_model_and_licence_are_named():
    assert pretrained.MODEL == "sentence-transformers/all-MiniLM-L6-v2" and pretrained.LICENSE == "Apache-2.0"
