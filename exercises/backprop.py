# Generated from solutions/ by `python -m kata.authoring.stubs`: your work goes where NotImplementedError is raised.
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
    # EXERCISE lesson07 "Backward through the model": write transformer_backward here
    raise NotImplementedError('transformer_backward (lesson 07) is not implemented yet: reread lessons/07_backpropagation.md, section "Backward through the model"')


def transformer_parameters(model):
    """[(param, grad), ...] for the embedding, each block in order, then the output layer."""
    # EXERCISE lesson07 "Parameters and gradients": write transformer_parameters here
    raise NotImplementedError('transformer_parameters (lesson 07) is not implemented yet: reread lessons/07_backpropagation.md, section "Parameters and gradients"')


def transformer_zero_grad(model):
    """Set every gradient of the model to zero, in place."""
    # Worked example, given complete: read it, it shows how the others are done.
    # fill in place: optimizers hold these very arrays, so a new array would be invisible to them
    for _, grad in transformer_parameters(model):
        grad.fill(0.0)


def numerical_gradient(f, x, grad_output=None, eps=1e-5):
    """Central differences of sum(f(x) * grad_output) with respect to x.

    f: a function of x returning an array (or a number); x: a float array, changed in place and restored
    grad_output: same shape as f(x), None meaning ones
    returns: an array shaped like x
    """
    check_array(x, "x")
    # EXERCISE lesson07 "Numerical gradients": write numerical_gradient here
    raise NotImplementedError('numerical_gradient (lesson 07) is not implemented yet: reread lessons/07_backpropagation.md, section "Numerical gradients"')
