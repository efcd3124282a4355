# An independent implementation (meta/test_similarity.py): the stub's given code, the exercises written anew.
"""Lesson 02: softmax, scaled dot-product attention and multi-head attention."""


import numpy as np

from .validation import check_array, check_mask, check_positive_int, xavier_uniform


def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along axis, shifted by the maximum so exp never overflows."""
    # log-sum-exp form: p = exp(x - log(sum(exp(x)))), with the maximum taken out before exp
    top = np.max(x, axis=axis, keepdims=True)
    log_total = top + np.log(np.sum(np.exp(x - top), axis=axis, keepdims=True))
    return np.exp(x - log_total)


def softmax_backward(grad_output, y, axis=-1):
    """The Jacobian-vector product of softmax: y * (g - sum(g * y)) along axis, y the forward output."""
    weighted = np.sum(np.multiply(grad_output, y), axis=axis, keepdims=True)
    return np.multiply(y, grad_output) - np.multiply(y, weighted)


class Softmax:
    """Softmax along one axis, as a layer (no parameters)."""

    def __init__(self, axis=-1):
        self.axis = axis
        self.cache = None

    def forward(self, x):
        """x: any shape -> same shape, positive, summing to 1 along axis"""
        check_array(x, "x", min_ndim=1)
        self.cache = softmax(x, self.axis)
        return self.cache

    def backward(self, grad_output):
        """grad_output: same shape as x -> gradient with respect to x"""
        return softmax_backward(grad_output, self.cache, self.axis)

    def get_parameters(self):
        return []

    def zero_grad(self):
        pass


def scaled_dot_product_attention(Q, K, V, mask=None):
    """softmax(Q K^T / sqrt(Dh)) V over the keys.

    Q: (..., T_q, Dh), K: (..., T_k, Dh), V: (..., T_k, Dh)
    mask: broadcastable to (..., T_q, T_k), True where a query may attend to a key
    returns: output (..., T_q, Dh), weights (..., T_q, T_k)
    """
    check_array(Q, "Q", min_ndim=2)
    check_array(K, "K", min_ndim=2, last_dim=Q.shape[-1])
    check_array(V, "V", min_ndim=2)
    if K.shape[-2] != V.shape[-2]:
        raise ValueError(f"K and V need the same number of keys, got shapes {K.shape} and {V.shape}")
    logits = np.einsum("...qd,...kd->...qk", Q, K) * (1.0 / np.sqrt(Q.shape[-1]))
    if mask is not None:
        blocked = ~np.broadcast_to(np.asarray(mask, dtype=bool), logits.shape)
        logits = logits.copy()
        logits[blocked] = -np.inf
    attn = softmax(logits)
    context = np.einsum("...qk,...kd->...qd", attn, V)
    return context, attn


def scaled_dot_product_attention_backward(grad_output, Q, K, V, weights):
    """The exact gradient of scaled_dot_product_attention.

    grad_output: (..., T_q, Dh); Q, K, V and weights as in and out of the forward pass
    returns: dQ (..., T_q, Dh), dK (..., T_k, Dh), dV (..., T_k, Dh)
    """
    grad_V = np.einsum("...qk,...qd->...kd", weights, grad_output)
    grad_attn = np.einsum("...qd,...kd->...qk", grad_output, V)
    per_query = np.einsum("...qk,...qk->...q", grad_attn, weights)[..., np.newaxis]
    grad_logits = weights * (grad_attn - per_query) / np.sqrt(Q.shape[-1])
    grad_Q = np.einsum("...qk,...kd->...qd", grad_logits, K)
    grad_K = np.einsum("...qk,...qd->...kd", grad_logits, Q)
    return grad_Q, grad_K, grad_V


class MultiHeadAttention:
    """H heads of self-attention over D / H dimensions each, in the layout of torch.nn.MultiheadAttention.

    W_q, W_k, W_v, W_o: (D, D); head h uses columns h*Dh:(h+1)*Dh of Q, K and V.
    """

    def __init__(self, embed_dim, num_heads):
        self.embed_dim = check_positive_int(embed_dim, "embed_dim")
        self.num_heads = check_positive_int(num_heads, "num_heads")
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
        self.head_dim = embed_dim // num_heads
        for name in ("W_q", "W_k", "W_v", "W_o"):
            setattr(self, name, xavier_uniform(embed_dim, embed_dim))
            setattr(self, "grad_" + name, np.zeros((embed_dim, embed_dim)))
        self.last_attention_weights = None
        self.cache = None

    def forward(self, x, mask=None):
        """x: (B, T, D), mask: (B, T) bool, True on tokens that may be attended to -> (B, T, D)"""
        check_array(x, "x", ndim=3, last_dim=self.embed_dim)
        if mask is not None:
            check_mask(mask, x.shape[:2])
        projected = {name: np.einsum("btd,de->bte", x, getattr(self, name)) for name in ("W_q", "W_k", "W_v")}
        allow = None if mask is None else mask[:, np.newaxis, :]  # (B, 1, T): every query sees the same keys
        pieces, maps = [], []
        for head in range(self.num_heads):
            cols = slice(head * self.head_dim, (head + 1) * self.head_dim)
            piece, attn = scaled_dot_product_attention(projected["W_q"][:, :, cols], projected["W_k"][:, :, cols],
                                                       projected["W_v"][:, :, cols], allow)
            pieces.append(piece)
            maps.append(attn)
        joined = np.concatenate(pieces, axis=-1)
        self.cache = {"x": x, "projected": projected, "maps": maps, "joined": joined}
        self.last_attention_weights = np.stack(maps, axis=1)
        return np.einsum("bte,ed->btd", joined, self.W_o)

    def backward(self, grad_output):
        """grad_output: (B, T, D) -> dx (B, T, D); adds into grad_W_q, grad_W_k, grad_W_v, grad_W_o."""
        saved = self.cache
        inputs, proj = saved["x"], saved["projected"]
        self.grad_W_o += np.einsum("bte,btd->ed", saved["joined"], grad_output)
        grad_joined = np.einsum("btd,ed->bte", grad_output, self.W_o)
        grads = {name: np.zeros_like(proj[name]) for name in proj}
        for head in range(self.num_heads):
            cols = slice(head * self.head_dim, (head + 1) * self.head_dim)
            parts = scaled_dot_product_attention_backward(grad_joined[:, :, cols], proj["W_q"][:, :, cols],
                                                          proj["W_k"][:, :, cols], proj["W_v"][:, :, cols],
                                                          saved["maps"][head])
            for name, part in zip(("W_q", "W_k", "W_v"), parts):
                grads[name][:, :, cols] = part
        grad_inputs = np.zeros_like(inputs, dtype=float)
        for name, grad in grads.items():
            accumulated = getattr(self, "grad_" + name)
            accumulated += np.einsum("btd,bte->de", inputs, grad)
            grad_inputs += np.einsum("bte,de->btd", grad, getattr(self, name))
        return grad_inputs

    def get_parameters(self):
        return [(self.W_q, self.grad_W_q), (self.W_k, self.grad_W_k),
                (self.W_v, self.grad_W_v), (self.W_o, self.grad_W_o)]

    def zero_grad(self):
        for _, grad in self.get_parameters():
            grad.fill(0.0)
