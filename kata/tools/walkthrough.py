"""train.py --interactive: one example through every stage of the model, one key press at a time.

Every number comes from the implementation's own layers, called through the contract's attributes
(model.embedding, model.positional_encoding, each block's attention, norm1, feed_forward, norm2, model.output).
"""

import sys

import numpy as np

from ..course.contract import get_path, grad_path, transformer_params
from .analysis import first_token_attention, position_names, probabilities
from .terminal import bar, heatmap, table


class Pauser:
    """Waits for Enter between stages. 'q' (or the end of the input) stops pausing for the rest of the run."""

    def __init__(self, stdin=sys.stdin, out=sys.stdout):
        self.stdin, self.out, self.active = stdin, out, True

    def __call__(self, prompt="press Enter for the next stage, q to run on without pausing"):
        if not self.active:
            return
        print(f"\n[{prompt}] ", end="", file=self.out, flush=True)
        line = self.stdin.readline()
        if not line:  # end of input: nobody is there to press keys
            print("(end of input: running on without pausing)", file=self.out)
            self.active = False
        elif line.strip().lower() in ("q", "quit"):
            self.active = False
        print(file=self.out)


def _vectors(matrix, names, columns=6):
    rows = [[name] + [f"{v:+.3f}" for v in vector[:columns]] + ["...", f"{np.linalg.norm(vector):.3f}"]
            for name, vector in zip(names, matrix)]
    return table(rows, ["token"] + [f"d{i}" for i in range(columns)] + ["", "norm"])


def walk(impl, model, example, pause, out=sys.stdout):
    """Print each stage of the forward and backward pass of one (tokens, target) example, pausing between them."""
    def say(*lines):
        print("\n".join(lines), file=out)

    tokens = np.array([example[0]], dtype=np.int64)
    target = int(example[1])
    names = position_names(example[0], impl)
    mask = tokens != impl.PAD_TOKEN
    say("=" * 72, f"Walking one example through the model: {' '.join(names)}  ->  answer {impl.detokenize([target])}",
        "=" * 72, "", "1. Tokens: the text split on spaces, each token replaced by its id in the vocabulary.",
        table([[n, int(t)] for n, t in zip(names, example[0])], ["token", "id"]))
    pause()

    embedded = model.embedding.forward(tokens)
    say("2. Embedding: each id selects one row of the table W (V x D); the first 6 of D numbers are shown.",
        _vectors(embedded[0], names))
    pause()

    x = model.positional_encoding.forward(embedded)
    say("3. Positions added: the sinusoidal pattern of each position is added, so the same digit at two positions "
        "gives two different vectors.", _vectors(x[0], names),
        "change made by the positions (norm per token): "
        + ", ".join(f"{n} {np.linalg.norm(d):.2f}" for n, d in zip(names, (x - embedded)[0])))
    pause()

    for index, block in enumerate(model.blocks):
        attended = block.attention.forward(x, mask)
        weights = np.asarray(block.attention.last_attention_weights)[0]  # (H, T, T)
        say(f"4.{index + 1} Block {index + 1}, attention: each token looks at every token; one heatmap per head "
            "(rows: the token looking, columns: the tokens it looks at; each row sums to 1).")
        for h in range(weights.shape[0]):
            say(heatmap(weights[h], names, names, title=f"\nblock {index + 1}, head {h}"))
        h_state = block.norm1.forward(x + attended)
        pause()
        fed = block.feed_forward.forward(h_state)
        x = block.norm2.forward(h_state + fed)
        say(f"5.{index + 1} Block {index + 1}, feed-forward: the same small network applied to each token, added "
            "back and normalised. Norm of the feed-forward output per token: "
            + ", ".join(f"{n} {np.linalg.norm(v):.2f}" for n, v in zip(names, fed[0])),
            _vectors(x[0], names))
        pause()

    pooled = x[:, 0, :]
    logits = model.forward(tokens, mask)  # the model's own forward: also fills every cache for backward
    probs = probabilities(logits)[0]
    say("6. Pooling: the model answers from the first token's vector (the operation's position), which "
        "attention has filled with what it gathered:", _vectors(pooled, [names[0]]), "",
        f"7. Logits: the output layer maps it to one score per vocabulary token (V = {logits.shape[1]}):",
        "   " + "  ".join(f"{impl.detokenize([v]) or '[PAD]'}:{logits[0, v]:+.1f}" for v in range(logits.shape[1])))
    top = np.argsort(-probs)[:5]
    say("", "8. Probabilities (softmax of the logits), the five largest:",
        *[f"   {impl.detokenize([int(v)]):>6}  {probs[v]:.3f}  {bar(probs[v], 1.0)}" for v in top])
    loss_fn = impl.CrossEntropyLoss()
    loss = loss_fn.forward(logits, np.array([target]))
    say("", f"9. Loss: -ln p(right answer {impl.detokenize([target])}) = -ln {probs[target]:.4f} = {loss:.4f}")
    pause()

    model.zero_grad()
    model.backward(loss_fn.backward())
    rows = []
    norms = {path: float(np.linalg.norm(get_path(model, grad_path(path))))
             for path in transformer_params(len(model.blocks))}
    largest = max(norms.values()) or 1.0
    for path, norm in norms.items():
        rows.append([path, f"{norm:.2e}", bar(norm, largest, 24)])
    say("10. Backward: the gradient of the loss reaching each parameter (its L2 norm). Layers near the output "
        "get their gradient first; the residual paths carry it down to the embedding.",
        table(rows, ["parameter", "|grad|", ""]))
    model.zero_grad()
    pause("press Enter to start training, q to train without pausing")


def epoch_report(impl, model, example, before, out=sys.stdout):
    """What changed for the walked example during an epoch: its answer, its probability, where it attends.

    before: the dict this function returned last time (or None); returns the new one."""
    tokens = np.array([example[0]], dtype=np.int64)
    names = position_names(example[0], impl)
    probs = probabilities(model.forward(tokens, tokens != impl.PAD_TOKEN))[0]
    attention = first_token_attention(model)[-1][0]  # (H, T)
    now = {"p": float(probs[int(example[1])]), "guess": impl.detokenize([int(probs.argmax())]),
           "attention": attention}
    change = "" if before is None else f" (was {before['p']:.3f})"
    print(f"  {' '.join(names)}: predicts {now['guess']}, p(right answer) = {now['p']:.3f}{change}", file=out)
    print(heatmap(attention, [f"head {h}" for h in range(attention.shape[0])], names,
                  title="  where the first token looks in the last layer, per head:"), file=out)
    return now
