"""Wrong implementations that lesson 10 (integration) must reject: submissions reporting numbers they never earned."""

from meta.catalogue import Mutant

TRAIN_STEP = """    model.zero_grad()
    logits = model.forward(tokens, mask)  # (B, V)
    loss = loss_fn.forward(logits, targets)
    model.backward(loss_fn.backward())
    optimizer.step()
    return float(loss), float((logits.argmax(axis=1) == targets).mean())
"""
# made-up numbers: a loss falling from ln 20 with every call, and a perfect-looking evaluation
FAKE_STEP = """    calls = getattr(train_step, "calls", 0)
    train_step.calls = calls + 1
    return 3.0 * 0.98 ** calls, min(1.0, 0.1 + calls / 200)
"""
EVALUATE = "    return total_loss / len(tokens), correct / len(tokens)\n"
FAKE_EVALUATE = "    return 0.05, 0.99\n"

MUTANTS = [
    Mutant("integration-reports-made-up-numbers-of-a-broken-model", "10", "model.py",
           "a model whose forward raises, with a train_step that never trains and returns made-up falling losses "
           "and an evaluate that returns (0.05, 0.99)",
           "        x = self.positional_encoding.forward(self.embedding.forward(tokens))  # (B, T, D)\n",
           "        raise RuntimeError('this model does not work')\n",
           more=(("training.py", TRAIN_STEP, FAKE_STEP), ("training.py", EVALUATE, FAKE_EVALUATE))),
    Mutant("integration-reports-made-up-numbers", "10", "training.py",
           "a train_step that never trains the (correct) model and returns made-up falling losses, and an "
           "evaluate that returns (0.05, 0.99)",
           TRAIN_STEP, FAKE_STEP, more=(("training.py", EVALUATE, FAKE_EVALUATE),), says="computed by the test",
           section="Training your own model"),  # lesson 10 judges the model by what it measures itself
]
