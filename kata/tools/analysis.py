"""Looking inside a trained model through the contract: predictions, confusion, where the first token attends.

train.py, play.py and the notebooks use these; they work on any implementation (impl) and its Transformer.
"""

import numpy as np

FOCUSED = 0.5  # a head is "focused" when its entropy is under half the entropy of uniform attention


def probabilities(logits):
    """Row-wise softmax of (B, V) logits, stable for large values."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def position_names(tokens, impl):
    """Readable names of the positions of one example: its tokens ('Max', '(', '5', ...)."""
    return [impl.detokenize([int(t)]) or "[PAD]" for t in tokens]


def first_token_attention(model):
    """[(B, H, T) per layer]: the attention weights of the first token (the pooled one) after a forward pass."""
    return [np.asarray(block.attention.last_attention_weights)[:, :, 0, :] for block in model.blocks]


def operation_of(example, impl):
    return impl.detokenize([example[0][0]])


def operations_of(dataset, impl):
    """[operation_of(e) for e in dataset], detokenizing each first token once."""
    names = {}
    for tokens, _ in dataset:
        if tokens[0] not in names:
            names[tokens[0]] = impl.detokenize([tokens[0]])
    return [names[tokens[0]] for tokens, _ in dataset]


def predict(model, dataset, impl, batch_size=512):
    """(targets, predicted, loss): each example's answer and the model's prediction, as (N,) token ids, and the
    mean loss over the examples (impl's CrossEntropyLoss), one batch of batch_size examples at a time."""
    loss_fn, targets, predicted, total = impl.CrossEntropyLoss(), [], [], 0.0
    for start in range(0, len(dataset), batch_size):
        tokens, batch_targets, mask = impl.create_batch(dataset[start:start + batch_size])
        logits = model.forward(tokens, mask)
        total += float(loss_fn.forward(logits, batch_targets)) * len(batch_targets)
        targets.append(np.asarray(batch_targets))
        predicted.append(np.asarray(logits).argmax(axis=-1))
    if not targets:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), float("nan")
    return np.concatenate(targets), np.concatenate(predicted), total / len(dataset)


def per_operation(dataset, targets, predicted, impl):
    """{op: accuracy} of predictions (predict's) for every op in impl.OPERATIONS (nan where an op has no example),
    as impl.per_operation_accuracy gives it."""
    ops = np.array(operations_of(dataset, impl))
    correct = np.asarray(predicted) == np.asarray(targets)
    return {op: float(correct[ops == op].mean()) if (ops == op).any() else float("nan") for op in impl.OPERATIONS}


def confusion_of(targets, predicted, impl):
    """(labels, counts): counts[i, j] = how often the true answer labels[i] was predicted as labels[j].

    labels are the digits '0'..'9' and 'other' (a prediction that is not a digit)."""
    labels = [str(d) for d in range(10)] + ["other"]
    index = {impl.tokenize(str(d))[0]: d for d in range(10)}
    counts = np.zeros((11, 11), dtype=np.int64)
    for true, guess in zip(targets, predicted):
        counts[index.get(int(true), 10), index.get(int(guess), 10)] += 1
    return labels, counts


def confusion_matrix(model, dataset, impl, batch_size=512):
    """confusion_of the model's predictions on dataset."""
    targets, predicted, _ = predict(model, dataset, impl, batch_size)
    return confusion_of(targets, predicted, impl)


def attention_summary(model, dataset, impl, per_operation=200):
    """For each operation: where the first token attends in each layer and head, and how focused it is.

    returns: {op: {"positions": [names], "layers": [[{"mean": (T,) mean weights, "top": name of the position
    with the largest mean weight, "top_weight": float, "on_answer": fraction of examples whose most attended
    token is the answer's digit, "entropy": mean entropy in nats, "uniform": ln T, "focused": bool} per head]
    per layer]}} for the operations present in dataset, on examples of one length
    """
    summary, ops = {}, operations_of(dataset, impl)
    for op in impl.OPERATIONS:
        examples = [e for e, name in zip(dataset, ops) if name == op]
        if not examples:
            continue
        length = len(examples[0][0])
        examples = [e for e in examples if len(e[0]) == length][:per_operation]
        tokens, targets, mask = impl.create_batch(examples)
        model.forward(tokens, mask)
        names = ["op", "("] + [f"arg {i}" for i in range(1, length - 2)] + [")"]
        layers = []
        for weights in first_token_attention(model):  # (B, H, T)
            entropy = np.asarray(impl.attention_entropy(weights))  # (B, H)
            heads = []
            for h in range(weights.shape[1]):
                mean = weights[:, h, :].mean(axis=0)
                top = int(mean.argmax())
                looked_at = tokens[np.arange(len(tokens)), weights[:, h, :].argmax(axis=-1)]
                heads.append({"mean": mean, "top": names[top], "top_weight": float(mean[top]),
                              "on_answer": float(np.mean(looked_at == targets)),
                              "entropy": float(entropy[:, h].mean()), "uniform": float(np.log(length)),
                              "focused": bool(entropy[:, h].mean() < FOCUSED * np.log(length))})
            layers.append(heads)
        summary[op] = {"positions": names, "layers": layers}
    return summary


def describe_attention(summary, layer=-1):
    """Lines of text: per operation and head of one layer, where the first token looks and how sharply."""
    lines = []
    for op, entry in summary.items():
        parts = []
        for h, head in enumerate(entry["layers"][layer]):
            kind = "focused" if head["focused"] else "spread "
            if not head["focused"]:
                place = f"largest mean weight {head['top_weight']:.2f}, on {head['top']}"
            elif head["top_weight"] >= 0.5:
                place = f"on {head['top']} (mean weight {head['top_weight']:.2f})"
            else:  # sharp in each example, but on a position that changes with the example
                place = f"on the answer's digit in {head['on_answer']:.0%} of examples"
            parts.append(f"head {h}: {kind} (entropy {head['entropy']:.2f} of {head['uniform']:.2f}), {place}")
        lines.append(f"{op:<6}  " + "\n        ".join(parts))
    return lines
