"""Wrong implementations of lesson 06 (CrossEntropyLoss)."""

from meta.catalogue import Mutant

LOG_PROBS = "log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, V)"

MUTANTS = [
    Mutant("loss-grad-not-divided-by-batch", "06", "loss.py",
           "the gradient of the mean loss not divided by B",
           "return grad / len(targets)", "return grad"),
    Mutant("loss-no-max-shift", "06", "loss.py",
           "log-softmax computed without subtracting the maximum (exp overflows for logits of 1000)",
           "shifted = logits - logits.max(axis=1, keepdims=True)", "shifted = logits"),
    Mutant("loss-summed", "06", "loss.py",
           "the loss summed over the batch instead of averaged",
           "return float(-log_probs[np.arange(len(targets)), targets].mean())",
           "return float(-log_probs[np.arange(len(targets)), targets].sum())"),
    Mutant("loss-grad-without-one-hot", "06", "loss.py",
           "backward returns softmax / B without subtracting the one-hot targets",
           "        grad[np.arange(len(targets)), targets] -= 1.0\n", ""),
    Mutant("loss-shift-not-added-back", "06", "loss.py",
           "the maximum subtracted inside the exp but the log-sum-exp taken from the unshifted logits",
           LOG_PROBS, "log_probs = logits - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, V)"),
    Mutant("loss-softmax-over-batch-axis", "06", "loss.py",
           "the softmax normalised over the batch axis (axis=0) instead of the classes",
           LOG_PROBS, "log_probs = shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True))  # (B, V)"),
    Mutant("loss-targets-indexed-as-columns", "06", "loss.py",
           "log_probs[:, targets] picks every target for every row (a (B, B) block) instead of one per row",
           "return float(-log_probs[np.arange(len(targets)), targets].mean())",
           "return float(-log_probs[:, targets].mean())"),
    Mutant("loss-grad-one-hot-as-columns", "06", "loss.py",
           "grad[:, targets] -= 1 subtracts 1 in every row of each target's column",
           "grad[np.arange(len(targets)), targets] -= 1.0", "grad[:, targets] -= 1.0"),
    Mutant("loss-grad-sign-flipped", "06", "loss.py",
           "backward returns one_hot - softmax (the gradient of the log-likelihood, not of the loss)",
           "return grad / len(targets)", "return -grad / len(targets)"),
    Mutant("loss-backward-changes-cache", "06", "loss.py",
           "backward subtracts the one-hot from the cached probabilities in place (a second backward differs)",
           "grad = probs.copy()", "grad = probs"),
    Mutant("loss-log-of-softmax", "06", "loss.py",
           "the log taken of the (stable) softmax probabilities, which underflow to 0 for very unlikely targets",
           LOG_PROBS,
           "log_probs = np.log(np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True))  # (B, V)"),
    Mutant("loss-shifts-logits-in-place", "06", "loss.py",
           "the maximum subtracted from the caller's logits in place (logits -= max): the loss is right, the "
           "caller's logits are changed",
           "shifted = logits - logits.max(axis=1, keepdims=True)",
           "logits -= logits.max(axis=1, keepdims=True)\n        shifted = logits", says="in place"),
]
