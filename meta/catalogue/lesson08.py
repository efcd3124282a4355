"""Wrong implementations of lesson 08 (SGD, Adam, train_step, evaluate)."""

from meta.catalogue import Mutant

MUTANTS = [
    Mutant("sgd-learning-rate-inside-velocity", "08", "optim.py",
           "v = momentum * v + lr * g; p -= v (the same while the learning rate is constant, wrong once a "
           "schedule changes it)",
           "            v += grad\n            param -= self.learning_rate * v",
           "            v += self.learning_rate * grad\n            param -= v"),
    Mutant("sgd-momentum-dampened", "08", "optim.py",
           "v = momentum * v + (1 - momentum) * g, an exponential average instead of the contract's momentum",
           "            v += grad\n", "            v += (1.0 - self.momentum) * grad\n"),
    Mutant("sgd-velocity-reset-every-step", "08", "optim.py",
           "the velocities created afresh in every step, so momentum never carries over",
           "        if self.velocities is None:\n"
           "            self.velocities = [np.zeros_like(param) for param, _ in pairs]",
           "        self.velocities = [np.zeros_like(param) for param, _ in pairs]"),
    Mutant("sgd-rebinds-param", "08", "optim.py",
           "param = param - lr * v rebinds the loop variable: the model's array never changes",
           "            param -= self.learning_rate * v", "            param = param - self.learning_rate * v"),
    Mutant("adam-no-bias-correction", "08", "optim.py",
           "Adam without bias correction (m and v used as they are)",
           "        correction1 = 1.0 - self.beta1 ** self.t\n        correction2 = 1.0 - self.beta2 ** self.t",
           "        correction1 = 1.0\n        correction2 = 1.0"),
    Mutant("adam-no-square-root", "08", "optim.py",
           "Adam divides by v_hat instead of its square root",
           "(np.sqrt(v / correction2) + self.epsilon)", "(v / correction2 + self.epsilon)"),
    Mutant("adam-step-count-stuck", "08", "optim.py",
           "t set to 1 in every step, so the bias correction is always that of the first step",
           "        self.t += 1\n", "        self.t = 1\n"),
    Mutant("adam-beta1-in-second-moment", "08", "optim.py",
           "the second moment averaged with beta1 instead of beta2",
           "v += (1.0 - self.beta2) * (grad * grad - v)", "v += (1.0 - self.beta1) * (grad * grad - v)"),
    Mutant("adam-moments-reset-every-step", "08", "optim.py",
           "the moment arrays created afresh in every step",
           "        if self.m is None:\n            self.m = [np.zeros_like(param) for param, _ in pairs]\n"
           "            self.v = [np.zeros_like(param) for param, _ in pairs]",
           "        self.m = [np.zeros_like(param) for param, _ in pairs]\n"
           "        self.v = [np.zeros_like(param) for param, _ in pairs]"),
    Mutant("train-step-forgets-zero-grad", "08", "training.py",
           "train_step never zeroes the gradients, so they pile up from step to step",
           "    model.zero_grad()\n    logits = model.forward(tokens, mask)",
           "    logits = model.forward(tokens, mask)"),
    Mutant("train-step-zero-grad-after-step", "08", "training.py",
           "gradients zeroed after the optimizer step, so whatever was in them before the first step is applied",
           "    model.zero_grad()\n    logits = model.forward(tokens, mask)  # (B, V)\n"
           "    loss = loss_fn.forward(logits, targets)\n    model.backward(loss_fn.backward())\n"
           "    optimizer.step()\n",
           "    logits = model.forward(tokens, mask)  # (B, V)\n"
           "    loss = loss_fn.forward(logits, targets)\n    model.backward(loss_fn.backward())\n    optimizer.step()\n"
           "    model.zero_grad()\n"),
    Mutant("train-step-steps-before-backward", "08", "training.py",
           "the optimizer steps before the backward pass (with zero gradients)",
           "    model.backward(loss_fn.backward())\n    optimizer.step()",
           "    optimizer.step()\n    model.backward(loss_fn.backward())"),
    Mutant("train-step-ignores-mask", "08", "training.py",
           "train_step calls forward without the mask it was given",
           "logits = model.forward(tokens, mask)  # (B, V)", "logits = model.forward(tokens)  # (B, V)"),
    Mutant("train-step-accuracy-count", "08", "training.py",
           "train_step returns the number of correct predictions instead of the fraction",
           "float((logits.argmax(axis=1) == targets).mean())", "float((logits.argmax(axis=1) == targets).sum())"),
    Mutant("evaluate-mean-of-batch-means", "08", "training.py",
           "evaluate averages the batch means, over-weighting a smaller last batch",
           "        total_loss += loss_fn.forward(logits, batch_targets) * len(batch)  # undo the batch mean\n"
           "        correct += int((logits.argmax(axis=1) == batch_targets).sum())\n"
           "    return total_loss / len(tokens), correct / len(tokens)",
           "        total_loss += loss_fn.forward(logits, batch_targets)\n"
           "        correct += int((logits.argmax(axis=1) == batch_targets).sum())\n"
           "    return total_loss / -(-len(tokens) // batch_size), correct / len(tokens)"),
    Mutant("evaluate-weights-by-batch-size", "08", "training.py",
           "evaluate multiplies each batch mean by batch_size, not by the number of examples in the batch",
           "* len(batch)  # undo the batch mean", "* batch_size  # undo the batch mean"),
    Mutant("evaluate-accuracy-count", "08", "training.py",
           "evaluate returns the number of correct predictions instead of the fraction",
           "return total_loss / len(tokens), correct / len(tokens)", "return total_loss / len(tokens), correct"),
    Mutant("evaluate-trains", "08", "training.py",
           "evaluate reuses train_step, so evaluation updates the parameters",
           "    total_loss, correct = 0.0, 0\n    for start in range(0, len(tokens), batch_size):\n"
           "        batch, batch_targets = tokens[start:start + batch_size], targets[start:start + batch_size]\n"
           "        logits = model.forward(batch)\n",
           "    from .optim import SGD\n    optimizer = SGD(model.get_parameters, learning_rate=0.01)\n"
           "    total_loss, correct = 0.0, 0\n    for start in range(0, len(tokens), batch_size):\n"
           "        batch, batch_targets = tokens[start:start + batch_size], targets[start:start + batch_size]\n"
           "        train_step(model, batch, batch_targets, loss_fn, optimizer)\n"
           "        logits = model.forward(batch)\n"),
    Mutant("train-step-clears-targets", "08", "training.py",
           "train_step overwrites the caller's targets with the model's predictions once it has taken the step",
           "    return float(loss), float((logits.argmax(axis=1) == targets).mean())\n",
           "    accuracy = float((logits.argmax(axis=1) == targets).mean())\n"
           "    targets[...] = logits.argmax(axis=1)\n    return float(loss), accuracy\n", says="in place"),
    Mutant("evaluate-clears-tokens", "08", "training.py",
           "evaluate overwrites the caller's tokens with PAD once it has computed the loss and accuracy",
           "    return total_loss / len(tokens), correct / len(tokens)\n",
           "    result = total_loss / len(tokens), correct / len(tokens)\n    tokens[...] = 0\n    return result\n",
           says="in place"),
]
