"""Lesson 08: SGD with momentum, Adam, one training step, and evaluation."""

import numpy as np
import pytest
from pytest_check import check

from kata.course.contract import get_path
from kata.course.manifest import reread
from tests.helpers import assert_close, call, draw_params, pick, seed, seeded, set_params, shapes, transformer_params
from tests.positions import assert_float64_positions

pytestmark = pytest.mark.lesson08

SEE_SGD = reread("08", "SGD and momentum")
SEE_ADAM = reread("08", "Adam")
SEE_STEP = reread("08", "One training step")
SEE_EVAL = reread("08", "Evaluation")

CFG = dict(vocab_size=20, embed_dim=8, num_heads=2, num_layers=2, ffn_dim=12)
V = CFG["vocab_size"]  # the task's vocabulary: 20 tokens whatever the model's other sizes


def pairs_of(*values):
    """[(param, grad)] float64 arrays: each param from values, each gradient zeros of its shape."""
    return [(np.array(v, dtype=np.float64), np.zeros(np.shape(v))) for v in values]


def set_grads(pairs, *grads):
    """Write gradient values into the existing gradient arrays, as a backward pass would."""
    for (_, grad), value in zip(pairs, grads):
        grad[...] = value


def check_params(pairs, expected, what, see):
    for k, ((param, _), value) in enumerate(zip(pairs, expected)):
        with check:
            assert_close(param, np.asarray(value, dtype=np.float64), f"{what}: parameter {k}", see)


# ---------------------------------------------------------------- SGD

def test_sgd_step_by_hand(impl):
    pairs = pairs_of([1.0, 2.0, -3.0], [[0.5], [-0.5]])
    params = [p for p, _ in pairs]
    optimizer = impl.SGD(pairs, learning_rate=0.1)
    set_grads(pairs, [0.5, -1.0, 2.0], [[4.0], [0.0]])
    optimizer.step()
    check_params(pairs, [[0.95, 2.1, -3.2], [[0.1], [-0.5]]],
                 "SGD(learning_rate=0.1).step() with p = [1, 2, -3], g = [0.5, -1, 2] and p = [[0.5], [-0.5]], "
                 "g = [[4], [0]]: p -= 0.1 * g", SEE_SGD)
    with check:
        assert all(p is q for (p, _), q in zip(pairs, params)), (
            f"SGD.step() must update each parameter array in place (param -= ...), not create new arrays; {SEE_SGD}")
    optimizer.zero_grad()
    with check:
        assert not any(np.any(g) for _, g in pairs), f"SGD.zero_grad() left non-zero gradients; {SEE_SGD}"
    optimizer.step()  # a zero gradient moves nothing
    check_params(pairs, [[0.95, 2.1, -3.2], [[0.1], [-0.5]]], "SGD.step() after zero_grad() (nothing to move)",
                 SEE_SGD)


def test_sgd_default_learning_rate(impl):
    pairs = pairs_of([1.0, -1.0])
    optimizer = impl.SGD(pairs)
    set_grads(pairs, [2.0, 3.0])
    optimizer.step()
    check_params(pairs, [[0.98, -1.03]], "SGD(parameters).step() with the default learning_rate 0.01, "
                 "p = [1, -1], g = [2, 3]", SEE_SGD)


def test_sgd_momentum_by_hand(impl):
    pairs = pairs_of([1.0, -2.0], [0.5])
    optimizer = impl.SGD(pairs, learning_rate=0.1, momentum=0.9)
    g1, g2, g3 = ([1.0, -2.0], [4.0]), ([0.5, 1.0], [-2.0]), ([-1.0, 0.0], [1.0])
    # v1 = g1; v2 = 0.9 g1 + g2; v3 = 0.81 g1 + 0.9 g2 + g3; p -= lr * v each step
    v1 = [np.array(a) for a in g1]
    v2 = [0.9 * a + np.array(b) for a, b in zip(v1, g2)]
    v3 = [0.9 * a + np.array(b) for a, b in zip(v2, g3)]
    p1 = [np.array([1.0, -2.0]) - 0.1 * v1[0], np.array([0.5]) - 0.1 * v1[1]]
    p2 = [a - 0.1 * b for a, b in zip(p1, v2)]
    p3 = [a - 0.1 * b for a, b in zip(p2, v3)]
    for step, (grads, expected) in enumerate(zip((g1, g2, g3), (p1, p2, p3)), start=1):
        optimizer.zero_grad()
        set_grads(pairs, *grads)
        optimizer.step()
        check_params(pairs, expected, f"SGD(learning_rate=0.1, momentum=0.9) after step {step}: v = 0.9 v + g, "
                     f"p -= 0.1 v (expected p{step} = {[np.round(e, 4).tolist() for e in expected]})", SEE_SGD)


def test_sgd_learning_rate_may_change_between_steps(impl):
    pairs = pairs_of([1.0, 1.0])
    optimizer = impl.SGD(pairs, learning_rate=0.1, momentum=0.5)
    set_grads(pairs, [1.0, -1.0])
    optimizer.step()  # v = g = [1, -1]; p = [0.9, 1.1]
    optimizer.learning_rate = 0.01
    set_grads(pairs, [2.0, 2.0])
    optimizer.step()  # v = 0.5 [1, -1] + [2, 2] = [2.5, 1.5]; p -= 0.01 v
    check_params(pairs, [[0.9 - 0.025, 1.1 - 0.015]],
                 "SGD(learning_rate=0.1, momentum=0.5): step with g = [1, -1], then learning_rate = 0.01 and a step "
                 "with g = [2, 2] (v = 0.5 v + g = [2.5, 1.5], p -= 0.01 v; the new rate applies to the whole "
                 "velocity)", SEE_SGD)


def one_step_on_linear(impl, optimizer_class, learning_rate, x):
    """A Linear(2, 1) with W = [[1], [2]] and b = [0.5], after forward([x]), backward([[1]]) and one step of an
    optimizer given the callable layer.get_parameters: (layer, optimizer)."""
    layer = impl.Linear(2, 1)
    layer.W = np.array([[1.0], [2.0]])
    layer.b = np.array([0.5])
    optimizer = optimizer_class(layer.get_parameters, learning_rate=learning_rate)
    layer.zero_grad()
    layer.forward(np.array([x]))
    layer.backward(np.array([[1.0]]))
    optimizer.step()
    return layer, optimizer


def test_sgd_accepts_a_callable(impl):
    layer, _ = one_step_on_linear(impl, impl.SGD, 0.5, [1.0, -1.0])  # grad_W = [[1], [-1]], grad_b = [1]
    with check:
        assert_close(layer.W, [[0.5], [2.5]], "SGD(layer.get_parameters, learning_rate=0.5).step(): Linear.W "
                     "(parameters given as a callable returning the (param, grad) pairs)", SEE_SGD)
    with check:
        assert_close(layer.b, [0.0], "SGD(layer.get_parameters, learning_rate=0.5).step(): Linear.b", SEE_SGD)


# ---------------------------------------------------------------- Adam

def test_adam_first_step_moves_by_the_learning_rate(impl):
    g = np.array([0.1, -0.3, 2.0, -1e-3])
    pairs = pairs_of([1.0, -2.0, 0.5, 0.0])
    param = pairs[0][0]
    optimizer = impl.Adam(pairs, learning_rate=0.01)
    set_grads(pairs, g)
    optimizer.step()
    # bias correction: m_hat = g and v_hat = g^2 after one step, so each parameter moves by lr * g / (|g| + eps)
    expected = np.array([1.0, -2.0, 0.5, 0.0]) - 0.01 * g / (np.abs(g) + 1e-8)
    check_params(pairs, [expected], "Adam(learning_rate=0.01), first step with g = [0.1, -0.3, 2, -0.001]: "
                 "thanks to bias correction every parameter moves by about 0.01 against the sign of g", SEE_ADAM)
    with check:
        assert pairs[0][0] is param, f"Adam.step() must update the parameter array in place; {SEE_ADAM}"


def test_adam_three_steps_by_hand(impl):
    p0 = np.array([[1.0, -2.0], [0.5, 3.0]])
    grads = [np.array([[0.1, -0.3], [2.0, 0.0]]), np.array([[0.2, 0.1], [-1.0, 0.5]]),
             np.array([[-0.4, 0.3], [1.5, -0.5]])]
    lrs = [0.01, 0.01, 0.05]  # the learning rate may change between steps
    b1, b2, eps = 0.8, 0.99, 1e-6
    pairs = pairs_of(p0, [5.0])
    optimizer = impl.Adam(pairs, learning_rate=0.01, beta1=b1, beta2=b2, epsilon=eps)
    p, m, v = p0.copy(), np.zeros((2, 2)), np.zeros((2, 2))
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
        optimizer.learning_rate = lr
        optimizer.zero_grad()
        set_grads(pairs, g, [0.0])
        optimizer.step()
        check_params(pairs, [p, [5.0]], f"Adam(beta1=0.8, beta2=0.99, epsilon=1e-6) after step {t} "
                     f"(learning_rate {lr}): m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, "
                     f"p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)", SEE_ADAM)


def test_adam_defaults(impl):
    g1, g2 = np.array([1.0, -2.0, 1e-8]), np.array([-3.0, 0.5, 1e-8])
    pairs = pairs_of([0.0, 0.0, 0.0])
    optimizer = impl.Adam(pairs)
    p, m, v = np.zeros(3), np.zeros(3), np.zeros(3)
    for t, g in enumerate((g1, g2), start=1):
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        p = p - 0.001 * (m / (1 - 0.9 ** t)) / (np.sqrt(v / (1 - 0.999 ** t)) + 1e-8)
        set_grads(pairs, g)
        optimizer.step()
        check_params(pairs, [p], f"Adam(parameters) with the defaults learning_rate=0.001, beta1=0.9, beta2=0.999, "
                     f"epsilon=1e-8, after step {t} (the last gradient, 1e-8, moves its parameter by about "
                     f"0.001 / 2: epsilon is added to sqrt(v_hat), outside the root)", SEE_ADAM)


def test_adam_callable_and_zero_grad(impl):
    layer, optimizer = one_step_on_linear(impl, impl.Adam, 0.1, [3.0, -1.0])  # grad_W = [[3], [-1]], grad_b = [1]
    with check:
        assert_close(layer.W, [[0.9], [2.1]], "Adam(layer.get_parameters, learning_rate=0.1), one step: Linear.W "
                     "(moves by about 0.1 against the sign of its gradient)", SEE_ADAM, rtol=1e-6)
    optimizer.zero_grad()
    with check:
        assert not np.any(layer.grad_W) and not np.any(layer.grad_b), (
            f"Adam.zero_grad() left non-zero gradients; {SEE_ADAM}")


# ---------------------------------------------------------------- train_step
#
# The models compared with the reference hold parameters the test draws (draw_params), and every batch comes from
# the reference's lesson 00 code through expect(): in the students' edition it is read back from tests/recorded/,
# with what the reference's train_step and evaluate gave on it. The implementation's own data pipeline plays no part.

def config():
    """The model's sizes: CFG for the public tests, under a variant other sizes within the contract."""
    return pick(CFG, dict(vocab_size=V, embed_dim=12, num_heads=3, num_layers=1, ffn_dim=16),
                dict(vocab_size=V, embed_dim=6, num_heads=1, num_layers=3, ffn_dim=10))


def drawn(cfg, k):
    """{path: values} for every parameter of a Transformer of sizes cfg, drawn from seeded(k)."""
    return draw_params(shapes("Transformer", cfg["embed_dim"], cfg["ffn_dim"], cfg["vocab_size"], cfg["num_layers"]),
                       seeded(k))


def model_with(make, cfg, params):
    """make(**cfg) (a Transformer class: the implementation's, or inside compute the reference's) given params."""
    model = make(**cfg)
    set_params(model, params)
    return model


def params_of(model, cfg):
    """{path: copy} of every parameter of a reference model (what compute returns)."""
    return {path: np.array(get_path(model, path)) for path in transformer_params(cfg["num_layers"])}


def batch(ref, n, data_seed, num_args=(2, 3)):
    """(tokens, targets, mask) of n examples of the reference's data set (inside compute only)."""
    return ref.create_batch(ref.generate_tokenized_dataset(n, num_args=num_args, seed=data_seed))


def batch_with_hits(ref, reference, n, data_seed, hits):
    """A batch whose targets make exactly `hits` of the reference model's predictions right (the first ones)."""
    tokens, targets, mask = batch(ref, n, data_seed)
    predictions = reference.forward(tokens, mask).argmax(axis=1)
    chosen = np.where(targets == predictions, (predictions + 1) % V, targets)
    chosen[:hits] = predictions[:hits]
    return tokens, chosen, mask


def compare_models(model, expected, cfg, what, see):
    """One failure for the first parameter that differs from the reference's (expected: {path: array}), naming the
    others that differ."""
    def differs(path):
        got = get_path(model, path)
        return not (isinstance(got, np.ndarray) and got.shape == expected[path].shape
                    and np.allclose(got, expected[path], rtol=1e-7, atol=1e-10))

    wrong = [path for path in transformer_params(cfg["num_layers"]) if differs(path)]
    if wrong:
        others = f" (and {len(wrong) - 1} more parameters: {', '.join(wrong[1:4])}, ...)" if len(wrong) > 1 else ""
        with check:
            assert_close(get_path(model, wrong[0]), expected[wrong[0]], f"{what}: Transformer.{wrong[0]}{others}", see)


def check_result(result, expected, what, see):
    assert isinstance(result, tuple) and len(result) == 2, (
        f"{what} must return a tuple (loss, accuracy), got {type(result).__name__}; {see}")
    loss, accuracy = result
    with check:
        assert_close(loss, expected[0], f"{what}: the loss", see)
    with check:
        assert_close(accuracy, expected[1], f"{what}: the accuracy (a fraction in [0, 1])", see)


def test_train_step_matches_the_reference(impl, expect):
    cfg, data_seed = config(), seed(1)
    params = drawn(cfg, 1)

    def compute(ref):
        reference = model_with(ref.Transformer, cfg, params)
        tokens, targets, mask = batch_with_hits(ref, reference, 8, data_seed, hits=3)
        result = ref.train_step(reference, tokens, targets, ref.CrossEntropyLoss(),
                                ref.SGD(reference.get_parameters(), learning_rate=0.1), mask)
        return {"batch": (tokens, targets, mask), "result": result, "params": params_of(reference, cfg)}

    expected = expect(compute)
    tokens, targets, mask = expected["batch"]
    model = model_with(impl.Transformer, cfg, params)
    assert_float64_positions(model.positional_encoding, tokens.shape[1], cfg["embed_dim"],
                             "Transformer.positional_encoding, which this test uses")
    optimizer = impl.SGD(model.get_parameters(), learning_rate=0.1)
    result = call(impl.train_step, model, tokens, targets, impl.CrossEntropyLoss(), optimizer, mask,
                  what="train_step", see=SEE_STEP)
    check_result(result, expected["result"], "train_step(model, tokens, targets, loss_fn, SGD(lr=0.1), mask) on 8 "
                 "examples, 3 of them predicted right before the step (accuracy 3/8)", SEE_STEP)
    with check:
        assert isinstance(result[0], float) and isinstance(result[1], float) and 0.0 <= result[1] <= 1.0, (
            f"train_step must return (loss: float, accuracy: float in [0, 1]), got {result!r}; {SEE_STEP}")
    compare_models(model, expected["params"], cfg, "after one train_step with SGD(learning_rate=0.1) (zero_grad, "
                   "forward, loss, backward, then optimizer.step())", SEE_STEP)


def test_train_step_zeroes_stale_gradients(impl, expect):
    cfg, data_seed, other_seed = config(), seed(2), seed(3)
    params = drawn(cfg, 2)
    stale = seeded(4).standard_normal((6, V))  # an upstream gradient from elsewhere

    def compute(ref):
        reference = model_with(ref.Transformer, cfg, params)
        tokens, targets, mask = batch_with_hits(ref, reference, 6, data_seed, hits=2)
        other, _, _ = batch(ref, 6, other_seed)
        reference.forward(other)
        reference.backward(stale.copy())  # gradients left over from elsewhere
        optimizer, loss_fn = ref.SGD(reference.get_parameters(), learning_rate=0.1), ref.CrossEntropyLoss()
        steps = []
        for _ in (1, 2):
            result = ref.train_step(reference, tokens, targets, loss_fn, optimizer, mask)
            steps.append({"result": result, "params": params_of(reference, cfg)})
        return {"batch": (tokens, targets, mask), "other": other, "steps": steps}

    expected = expect(compute)
    tokens, targets, mask = expected["batch"]
    model = model_with(impl.Transformer, cfg, params)
    assert_float64_positions(model.positional_encoding, tokens.shape[1], cfg["embed_dim"],
                             "Transformer.positional_encoding, which this test uses")
    model.forward(expected["other"])
    model.backward(stale.copy())
    optimizer = impl.SGD(model.get_parameters(), learning_rate=0.1)
    loss_fn = impl.CrossEntropyLoss()
    for step, after in enumerate(expected["steps"], start=1):
        result = call(impl.train_step, model, tokens, targets, loss_fn, optimizer, mask,
                      what="train_step", see=SEE_STEP)
        check_result(result, after["result"], f"train_step number {step} on the same batch", SEE_STEP)
        compare_models(model, after["params"], cfg, f"after train_step number {step}, started with stale gradients "
                       f"in the model (train_step must zero the gradients before its backward pass)", SEE_STEP)


def test_train_step_passes_the_mask(impl, expect):
    cfg, data_seed = config(), seed(5)
    params = drawn(cfg, 5)

    def compute(ref):
        reference = model_with(ref.Transformer, cfg, params)
        tokens, targets, mask = batch(ref, 4, data_seed)
        mask[:, 2] = False  # hide a real token of every example: only a model that receives the mask notices
        targets[:2] = reference.forward(tokens, mask)[:2].argmax(axis=1)
        result = ref.train_step(reference, tokens, targets, ref.CrossEntropyLoss(),
                                ref.SGD(reference.get_parameters(), learning_rate=0.1), mask)
        return {"batch": (tokens, targets, mask), "result": result, "params": params_of(reference, cfg)}

    expected = expect(compute)
    tokens, targets, mask = expected["batch"]
    model = model_with(impl.Transformer, cfg, params)
    result = call(impl.train_step, model, tokens, targets, impl.CrossEntropyLoss(),
                  impl.SGD(model.get_parameters(), learning_rate=0.1), mask, what="train_step", see=SEE_STEP)
    check_result(result, expected["result"], "train_step(..., mask) with a mask that hides the third token of every "
                 "example (forward must receive the mask)", SEE_STEP)
    compare_models(model, expected["params"], cfg, "after train_step with a mask hiding the third token",
                   SEE_STEP)


def test_train_step_loss_falls_on_a_fixed_batch(impl, expect):
    data_seed = seed(1)
    tokens, targets, mask = expect(lambda ref: batch(ref, 8, data_seed))
    model = impl.Transformer(**CFG)
    optimizer = impl.Adam(model.get_parameters(), learning_rate=0.01)
    loss_fn = impl.CrossEntropyLoss()
    losses, accuracies = [], []
    for _ in range(20):
        loss, accuracy = call(impl.train_step, model, tokens, targets, loss_fn, optimizer, mask,
                              what="train_step", see=SEE_STEP)
        losses.append(float(loss))
        accuracies.append(accuracy)
    with check:
        assert losses[-1] < 0.6 * losses[0], (
            f"20 train_steps with Adam(learning_rate=0.01) on one fixed batch of 8 examples should bring the loss "
            f"well down (the reference goes from about 3.2 to about 1.0); got {losses[0]:.3f} -> {losses[-1]:.3f}; "
            f"{SEE_STEP}")
    with check:
        assert all(0.0 <= a <= 1.0 for a in accuracies), (
            f"train_step's accuracy must be a fraction in [0, 1], got {accuracies}; {SEE_STEP}")


# ---------------------------------------------------------------- evaluate

def eval_data(cfg, params):
    """compute for expect(): 5 examples of different lengths, targets chosen so that exactly 3 of the reference's
    predictions are right, and the reference's loss on them: {"tokens", "targets", "loss"}."""
    data_seed = seed(6)

    def compute(ref):
        reference = model_with(ref.Transformer, cfg, params)
        tokens, _, _ = batch(ref, 5, data_seed, num_args=(2, 4))
        logits = reference.forward(tokens)
        predictions = logits.argmax(axis=1)
        targets = predictions.copy()
        targets[[1, 3]] = (predictions[[1, 3]] + 1) % V
        loss = ref.CrossEntropyLoss().forward(logits, targets)  # the mean over all 5 examples at once
        return {"tokens": tokens, "targets": targets, "loss": loss}

    return compute


@pytest.mark.parametrize("batch_size", [2, 3, 256])
def test_evaluate_loss_is_the_mean_over_all_examples(impl, expect, batch_size):
    cfg = config()
    params = drawn(cfg, 6)
    expected = expect(eval_data(cfg, params))
    model = model_with(impl.Transformer, cfg, params)
    result = call(impl.evaluate, model, expected["tokens"], expected["targets"], impl.CrossEntropyLoss(),
                  batch_size=batch_size, what="evaluate", see=SEE_EVAL)
    check_result(result, (expected["loss"], 0.6), f"evaluate(model, 5 examples, batch_size={batch_size}) with 3 of 5 "
                 f"predictions right (the loss is the mean over the 5 examples, not the mean of the batch means; the "
                 f"accuracy is 3/5)", SEE_EVAL)


def test_evaluate_does_not_change_parameters(impl, expect):
    cfg = config()
    params = drawn(cfg, 7)
    expected = expect(eval_data(cfg, params))
    tokens, targets = expected["tokens"], expected["targets"]
    model = model_with(impl.Transformer, cfg, params)
    paths = transformer_params(cfg["num_layers"])
    before = {path: np.array(get_path(model, path)) for path in paths}
    result = call(impl.evaluate, model, tokens, targets, impl.CrossEntropyLoss(), batch_size=2,
                  what="evaluate", see=SEE_EVAL)
    check_result(result, (expected["loss"], 0.6), "evaluate(model, 5 examples, batch_size=2)", SEE_EVAL)
    for path in paths:
        with check:
            assert np.array_equal(get_path(model, path), before[path]), (
                f"evaluate changed Transformer.{path}: evaluation runs forward only (no backward, no optimizer "
                f"step); {SEE_EVAL}")
    again = call(impl.evaluate, model, tokens, targets, impl.CrossEntropyLoss(), batch_size=2,
                 what="evaluate", see=SEE_EVAL)
    check_result(again, (expected["loss"], 0.6), "evaluate called a second time on the same data (must give the same "
                 "result)", SEE_EVAL)
