"""Lesson 07: backpropagation through the whole model, and a numerical gradient to check it."""

import numpy as np

from .validation import check_array


def transformer_backward(model, grad_logits):
    """Backward through a Transformer after its forward pass.

    grad_logits: (B, V), the gradient of the loss with respect to the logits (the loss owns the softmax)
    returns: None (the input was token ids); adds into every parameter's gradient
    """
    B, T = model.tokens_shape
    check_array(grad_logits, "grad_logits", ndim=2)
    if grad_logits.shape != (B, model.vocab_size):
        raise ValueError(f"grad_logits must have shape {(B, model.vocab_size)} (B, V), "
                         f"got {grad_logits.shape}")
    # BEGIN SOLUTION
    d_pooled = model.output.backward(grad_logits)  # (B, D)
    dx = np.zeros((B, T, model.embed_dim), dtype=d_pooled.dtype)
    dx[:, 0, :] = d_pooled  # only the first token was read by the output layer
    for block in reversed(model.blocks):
        dx = block.backward(dx)
    model.embedding.backward(model.positional_encoding.backward(dx))
    return None
    # END SOLUTION


def transformer_parameters(model):
    """[(param, grad), ...] for the embedding, each block in order, then the output layer."""
    # BEGIN SOLUTION
    pairs = model.embedding.get_parameters()
    for block in model.blocks:
        pairs += block.get_parameters()
    return pairs + model.output.get_parameters()
    # END SOLUTION


def transformer_zero_grad(model):
    """Set every gradient of the model to zero, in place."""
    # BEGIN WORKED EXAMPLE
    # fill in place: optimizers hold these very arrays, so a new array would be invisible to them
    for _, grad in transformer_parameters(model):
        grad.fill(0.0)
    # END WORKED EXAMPLE


def numerical_gradient(f, x, grad_output=None, eps=1e-5):
    """Central differences of sum(f(x) * grad_output) with respect to x.

    f: a function of x returning an array (or a number); x: a float array, changed in place and restored
    grad_output: same shape as f(x), None meaning ones
    returns: an array shaped like x
    """
    check_array(x, "x")
    # BEGIN SOLUTION
    def objective():
        out = np.asarray(f(x), dtype=np.float64)
        return out.sum() if grad_output is None else (out * grad_output).sum()

    grad = np.zeros(x.shape)
    for index in np.ndindex(x.shape):
        original = x[index]
        x[index] = original + eps
        plus = objective()
        x[index] = original - eps
        minus = objective()
        x[index] = original  # restore the saved value exactly, not original + eps - eps
        grad[index] = (plus - minus) / (2 * eps)
    return grad
    # END SOLUTION
