"""Wrong implementations of lesson 07 (Transformer.backward, get_parameters, zero_grad, numerical_gradient)."""

from meta.catalogue import Mutant

MUTANTS = [
    Mutant("model-backward-pools-last-token", "07", "backprop.py",
           "the pooled gradient sent to the last position instead of the first token",
           "dx[:, 0, :] = d_pooled", "dx[:, -1, :] = d_pooled"),
    Mutant("model-backward-pooled-grad-to-every-position", "07", "backprop.py",
           "the pooled gradient copied to every position, as if the model had read them all",
           "dx[:, 0, :] = d_pooled", "dx[:] = d_pooled[:, None, :]"),
    Mutant("model-backward-blocks-in-forward-order", "07", "backprop.py",
           "the blocks traversed in forward order instead of reversed",
           "for block in reversed(model.blocks):", "for block in model.blocks:"),
    Mutant("model-backward-skips-embedding", "07", "backprop.py",
           "the embedding's backward never called (the positional encoding is the last step)",
           "model.embedding.backward(model.positional_encoding.backward(dx))",
           "model.positional_encoding.backward(dx)"),
    Mutant("model-backward-skips-output-layer", "07", "backprop.py",
           "the gradient of the pooled state computed as grad_logits @ W.T by hand, so output.grad_W and grad_b "
           "are never filled",
           "d_pooled = model.output.backward(grad_logits)  # (B, D)",
           "d_pooled = grad_logits @ model.output.W.T  # (B, D)"),
    Mutant("model-backward-returns-gradient", "07", "backprop.py",
           "backward returns the gradient of the embeddings instead of None",
           "    model.embedding.backward(model.positional_encoding.backward(dx))\n    return None",
           "    model.embedding.backward(model.positional_encoding.backward(dx))\n    return dx"),
    Mutant("get-parameters-returns-copies", "07", "backprop.py",
           "get_parameters returns copies of the arrays, so an optimizer never updates the model",
           "return pairs + model.output.get_parameters()",
           "return [(p.copy(), g.copy()) for p, g in pairs + model.output.get_parameters()]"),
    Mutant("get-parameters-misses-output-bias", "07", "backprop.py",
           "get_parameters lists output.W but forgets output.b",
           "return pairs + model.output.get_parameters()",
           "return pairs + [(model.output.W, model.output.grad_W)]"),
    Mutant("get-parameters-only-last-block", "07", "backprop.py",
           "the block loop overwrites the list instead of extending it, keeping only the last block",
           "pairs += block.get_parameters()", "pairs = model.embedding.get_parameters() + block.get_parameters()"),
    Mutant("zero-grad-replaces-arrays", "07", "backprop.py",
           "zero_grad assigns new zero arrays instead of filling the existing ones",
           "    for _, grad in transformer_parameters(model):\n        grad.fill(0.0)",
           "    model.embedding.grad_W = np.zeros_like(model.embedding.W)\n"
           "    for block in model.blocks:\n        block.zero_grad()\n"
           "    model.output.grad_W = np.zeros_like(model.output.W)\n"
           "    model.output.grad_b = np.zeros_like(model.output.b)"),
    Mutant("zero-grad-forgets-embedding", "07", "backprop.py",
           "zero_grad clears the blocks and the output layer but not the embedding",
           "    for _, grad in transformer_parameters(model):\n        grad.fill(0.0)",
           "    for _, grad in transformer_parameters(model)[1:]:\n        grad.fill(0.0)"),
    Mutant("numerical-gradient-one-sided", "07", "backprop.py",
           "a forward difference (f(x + eps) - f(x)) / eps instead of central differences",
           "        x[index] = original - eps\n        minus = objective()\n"
           "        x[index] = original  # restore the saved value exactly, not original + eps - eps\n"
           "        grad[index] = (plus - minus) / (2 * eps)",
           "        x[index] = original\n        minus = objective()\n"
           "        grad[index] = (plus - minus) / eps"),
    Mutant("numerical-gradient-does-not-restore-x", "07", "backprop.py",
           "x left at x - eps after each entry's difference",
           "        x[index] = original  # restore the saved value exactly, not original + eps - eps\n", ""),
    Mutant("numerical-gradient-restores-by-arithmetic", "07", "backprop.py",
           "x perturbed with += eps, -= 2 eps, += eps (the value does not always come back bit for bit)",
           "        x[index] = original + eps\n        plus = objective()\n        x[index] = original - eps\n"
           "        minus = objective()\n"
           "        x[index] = original  # restore the saved value exactly, not original + eps - eps\n",
           "        x[index] += eps\n        plus = objective()\n        x[index] -= 2 * eps\n"
           "        minus = objective()\n        x[index] += eps\n"),
    Mutant("numerical-gradient-ignores-grad-output", "07", "backprop.py",
           "grad_output ignored: the sum of f(x) is always differentiated",
           "return out.sum() if grad_output is None else (out * grad_output).sum()", "return out.sum()"),
    Mutant("numerical-gradient-nudges-a-copy", "07", "backprop.py",
           "numerical_gradient nudges a copy of x and calls f(copy): right for a function of its argument, 0 "
           "everywhere for the whole-model check, whose f reads the parameter x itself",
           "        x[index] = original + eps\n        plus = objective()\n"
           "        x[index] = original - eps\n        minus = objective()\n"
           "        x[index] = original  # restore the saved value exactly, not original + eps - eps\n",
           "        weight = 1.0 if grad_output is None else grad_output\n"
           "        nudged = x.copy()\n        nudged[index] = original + eps\n"
           "        plus = np.sum(np.asarray(f(nudged), dtype=np.float64) * weight)\n"
           "        nudged[index] = original - eps\n"
           "        minus = np.sum(np.asarray(f(nudged), dtype=np.float64) * weight)\n"),
    Mutant("model-backward-clears-grad-logits", "07", "backprop.py",
           "transformer_backward clears the caller's grad_logits once the output layer has used them",
           "    d_pooled = model.output.backward(grad_logits)  # (B, D)\n",
           "    d_pooled = model.output.backward(grad_logits)  # (B, D)\n    grad_logits[...] = 0.0\n",
           says="in place"),
    Mutant("numerical-gradient-scales-grad-output", "07", "backprop.py",
           "numerical_gradient folds 1 / (2 eps) into the caller's grad_output in place",
           "        return out.sum() if grad_output is None else (out * grad_output).sum()\n",
           "        return out.sum() if grad_output is None else (out * grad_output).sum()\n\n"
           "    if grad_output is not None:\n        grad_output /= 2 * eps\n        scale = 1.0\n"
           "    else:\n        scale = 1.0 / (2 * eps)\n",
           more=(("backprop.py", "        grad[index] = (plus - minus) / (2 * eps)\n",
                  "        grad[index] = (plus - minus) * scale\n"),), says="in place"),
]
