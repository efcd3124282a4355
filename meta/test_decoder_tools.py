"""Tests of the GPT track's tools: train.py --model decoder (kata/tools/train_decoder.py), play.py with a decoder's
checkpoint (DecoderPlayer), the DecoderLM checkpoints, and the pretrained decoder checkpoints/pretrained_decoder.npz."""

import io
import json
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from kata.course.exercises import unfinished
from kata.course.implementation import load
from kata.course.repository import ROOT
from kata.tools import checkpoint, train_decoder
from kata.tools.play import PRETRAINED, PRETRAINED_DECODER, DecoderPlayer, ParseError, main, parse_prompt
from kata.tools.train import parse_args, run

pytestmark = pytest.mark.meta

REF = load("solutions")
TINY_RUN = ["--model", "decoder", "--impl", "solutions", "--size", "small", "--steps", "260", "--seed", "0",
            "--no-progress"]


def sorted_tokens(digits):
    return [REF.VOCAB[str(d)] for d in sorted(digits)] + [REF.EOS_TOKEN]


# ---------------------------------------------------------------- train.py --model decoder

@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """run() on the reference's decoder: --size small --steps 260, with --metrics-json and --checkpoint."""
    folder = tmp_path_factory.mktemp("decoder")
    files = {"metrics": folder / "metrics.json", "checkpoint": folder / "decoder.npz"}
    args = parse_args(TINY_RUN + ["--metrics-json", str(files["metrics"]), "--checkpoint", str(files["checkpoint"])])
    out = io.StringIO()
    metrics = run(args, out=out)
    return metrics, out.getvalue(), files


def test_the_decoder_metrics_json_has_the_promised_keys(tiny_run):
    metrics, _, files = tiny_run
    written = json.loads(files["metrics"].read_text())
    assert written == json.loads(json.dumps(metrics)), "run() returns what it writes"
    assert isinstance(written["test_exact_match"], float) and 0.5 <= written["test_exact_match"] <= 1.0, written
    lengths = written["exact_match_by_length"]
    assert list(lengths) == ["2", "3", "4", "5", "6", "7", "8", "10"], lengths
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in lengths.values()), lengths
    assert isinstance(written["train_seconds"], float) and 0.0 < written["train_seconds"] < 120
    assert written["seed"] == 0 and written["steps"] == 260 and written["steps_run"] == 260
    assert written["model"] == "decoder" and written["interrupted"] is None
    assert [h["step"] for h in written["history"]] == [250, 260]
    assert written["train_examples"] == 5_000 and written["test_examples"] == 1_000


def test_the_decoder_checkpoint_restores_the_reported_model(tiny_run):
    metrics, _, files = tiny_run
    model, header = checkpoint.restore(REF, files["checkpoint"])
    assert isinstance(model, REF.DecoderLM)
    assert header["model"] == "DecoderLM" and header["config"] == train_decoder.CONFIG
    assert header["trained_with"]["steps"] == 260 and header["trained_with"]["num_digits"] == [2, 6]
    test = REF.generate_sorting_dataset(1_000, (2, 6), seed=train_decoder.TEST_SEED + 0)
    assert REF.exact_match_accuracy(model, test) == metrics["test_exact_match"] == header["metrics"]["test_exact_match"]


def test_the_decoder_run_prints_progress_lengths_and_answers(tiny_run):
    metrics, text, _ = tiny_run
    assert "DecoderLM (102,164 parameters)" in text
    assert "step 250/260: train loss" in text and "step 260/260: train loss" in text
    assert f"Held-out exact-sequence accuracy on 1,000 test examples of 2 to 6 digits: " \
           f"{metrics['test_exact_match']:.4f}" in text
    assert "longer: never seen" in text and "Greedy answers to three test prompts:" in text


def test_play_answers_a_prompt_piped_in_with_the_trained_decoder(tiny_run):
    _, _, files = tiny_run
    out = io.StringIO()
    code = main(["--impl", "solutions", "--checkpoint", str(files["checkpoint"])],
                stdin=io.StringIO("( 5 3 9 )\n7 1\n"), out=out)
    text = out.getvalue()
    assert code == 0, text
    assert text.startswith(f"Loaded the decoder {files['checkpoint']}, held-out exact match"), text
    assert text.count("answer: ") == 2, text
    assert "wrote 3" in text and "attention of the last layer" in text, text
    assert text.rstrip().endswith("bye")


def test_the_decoder_refuses_encoder_options():
    for extra in (["--plots", "p"], ["--interactive"], ["--steps", "5", "--epochs", "1"]):
        with pytest.raises(SystemExit):
            parse_args(["--model", "decoder", *extra])
    with pytest.raises(SystemExit):
        parse_args(["--steps", "5"])  # the encoder counts epochs


def test_an_unfinished_decoder_is_refused_naming_its_first_exercise(stubs):
    todo = [stub for stub in unfinished(stubs) if stub.lesson in train_decoder.LESSONS]
    with pytest.raises(SystemExit) as info:
        run(parse_args(["--model", "decoder", "--impl", str(stubs), "--no-progress"]), out=io.StringIO())
    assert "is not finished" in str(info.value) and f"The first: {todo[0].symbol}" in str(info.value)


# ---------------------------------------------------------------- play.py with the pretrained decoder

@pytest.fixture(scope="module")
def decoder_player():
    model, header = checkpoint.restore(REF, PRETRAINED_DECODER)
    return DecoderPlayer(REF, model, header)


def test_the_pretrained_decoder_sorts_prompts(decoder_player):
    model = decoder_player.model
    prompts = [[5, 3, 9], [0, 0], [9, 8, 7, 6, 5, 4], [4, 1, 4, 1], [2, 7, 1, 8, 2]]
    for digits in prompts:
        tokens = [token for token, _, _ in decoder_player.write(REF.tokenize("( " + " ".join(map(str, digits))
                                                                             + " )"))]
        assert tokens == sorted_tokens(digits), (digits, REF.detokenize(tokens))
    written = REF.generate(model, [REF.tokenize("( " + " ".join(map(str, d)) + " )") for d in prompts], 8)
    assert written == [sorted_tokens(d) for d in prompts]


def test_the_pretrained_decoder_json_matches_its_checkpoint():
    header, _ = checkpoint.load(PRETRAINED_DECODER)
    metrics = json.loads(PRETRAINED_DECODER.with_suffix(".json").read_text())
    assert metrics["test_exact_match"] == header["metrics"]["test_exact_match"] >= 0.99
    assert metrics["seed"] == 0 and metrics["implementation"] == "solutions"


def test_the_answer_shows_tokens_probabilities_and_attention(decoder_player):
    text = decoder_player.answer("( 5 3 9 3 )")
    assert "answer: 3 3 5 9 [EOS]  (greedy; right)" in text, text
    lines = text.splitlines()
    rows = [line for line in lines if line.split() and line.split()[0] in {"3", "5", "9", "[EOS]"}]
    assert len(rows) == 5, text
    for row in rows:
        probability = float(row.split()[1])
        assert 0.5 < probability <= 1.0, row
        assert "@" in row, f"no attended position in {row!r}"
    assert sum(line.startswith("wrote ") for line in lines) == 5


def test_the_answer_reads_other_forms_and_warns_about_lengths(decoder_player):
    assert "read as: ( 5 3 9 )" in decoder_player.answer("5 3 9")
    assert "read as: ( 5 3 9 )" in decoder_player.answer("(5,3,9)")
    assert "trained on 2 to 6 digits" in decoder_player.answer("( 9 8 7 6 5 4 3 )")
    assert decoder_player.answer("53").startswith("? 53 is more than one digit")


@pytest.mark.parametrize("line, expected", [
    ("", "an empty line"), ("( )", "no digits"), ("( 5 3", "unbalanced"), ("5 x", "'x' is not a digit"),
    ("12 3", "more than one digit"), (" ".join(["1"] * 30), "too many"),
])
def test_parse_prompt_rejects_bad_lines_saying_why(line, expected):
    with pytest.raises(ParseError, match=expected):
        parse_prompt(line, max_digits=23)


def test_sampling_is_seeded(decoder_player):
    model, header = decoder_player.model, decoder_player.header
    answers = [DecoderPlayer(REF, model, header, temperature=1.5, seed=3).answer("( 4 8 1 6 2 5 )")
               for _ in range(2)]
    assert answers[0] == answers[1] and "sampled at temperature 1.5" in answers[0]


def test_play_py_recognises_a_decoder_checkpoint_and_refuses_a_mismatch(capsys):
    out = io.StringIO()
    assert main(["--impl", "solutions", "--checkpoint", str(PRETRAINED_DECODER), "( 2 1 )"], out=out) == 0
    assert "answer: 1 2 [EOS]" in out.getvalue()
    assert main(["--impl", "solutions", "--model", "decoder", "--checkpoint", str(PRETRAINED), "1 2"],
                out=io.StringIO()) == 1
    assert "holds a Transformer, not the decoder's model" in capsys.readouterr().err


def test_play_py_with_model_decoder_answers_from_the_command_line():
    proc = subprocess.run([sys.executable, "play.py", "--impl", "solutions", "--model", "decoder", "( 6 2 4 )"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "answer: 2 4 6 [EOS]  (greedy; right)" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- DecoderLM checkpoints

@pytest.mark.parametrize("tied", [False, True])
def test_a_decoder_checkpoint_round_trips(tmp_path, tied):
    config = {"vocab_size": 20, "embed_dim": 8, "num_heads": 2, "num_layers": 1, "ffn_dim": 16, "max_seq_len": 20,
              "tie_weights": tied}
    model = REF.DecoderLM(**config)
    rng = np.random.default_rng(0)
    for param, _ in model.get_parameters():
        param[...] = rng.normal(size=param.shape)
    path = tmp_path / "lm.npz"
    checkpoint.save(path, model, config, kind=checkpoint.DECODER)
    restored, header = checkpoint.restore(REF, path)
    assert header["model"] == "DecoderLM" and header["config"] == config and (restored.output is None) == tied
    tokens = np.array([[17, 5, 3, 18, 3]])
    assert np.array_equal(restored.forward(tokens), model.forward(tokens))


def test_an_encoder_header_is_unchanged(tmp_path):
    model = REF.Transformer(vocab_size=20, embed_dim=8, num_heads=2, num_layers=1, ffn_dim=16, max_seq_len=10)
    config = {"vocab_size": 20, "embed_dim": 8, "num_heads": 2, "num_layers": 1, "ffn_dim": 16, "max_seq_len": 10}
    checkpoint.save(tmp_path / "m.npz", model, config)
    header, _ = checkpoint.load(tmp_path / "m.npz")
    assert "model" not in header and checkpoint.kind_of(header) == "Transformer"


# ---------------------------------------------------------------- Ctrl-C during the decoder's training

@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is sent to a process group there")
def test_sigint_after_an_evaluation_writes_the_kept_model_and_exits_130(tmp_path):
    from meta.test_train_tool import read_until, train_py
    proc = train_py("--model", "decoder", "--size", "small", "--steps", "100000", "--checkpoint",
                    str(tmp_path / "lm.npz"), "--metrics-json", str(tmp_path / "metrics.json"))
    read_until(proc.stdout, "step 250/100000:")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.search(r"^train\.py: interrupted at step \d+ of 100000: kept the model of step \d+ ", err,
                     flags=re.MULTILINE), err
    assert "wrote the model to" in err and "the metrics to" in err and "Traceback" not in err, err
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["interrupted"].startswith("at step") and metrics["best_step"] % 250 == 0
    model, header = checkpoint.restore(REF, tmp_path / "lm.npz")
    assert header["metrics"]["test_exact_match"] == metrics["test_exact_match"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is sent to a process group there")
def test_sigint_before_the_first_evaluation_says_nothing_was_saved(tmp_path):
    from meta.test_train_tool import read_until, train_py
    proc = train_py("--model", "decoder", "--size", "small", "--checkpoint", str(tmp_path / "lm.npz"))
    read_until(proc.stdout, "Training solutions's DecoderLM")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert re.search(r"^train\.py: interrupted (before the first training step|at step \d+ of 1500): nothing was "
                     r"saved, as no evaluation \(every 250 steps\) had finished$", err, flags=re.MULTILINE), err
    assert list(tmp_path.iterdir()) == [] and "Traceback" not in err
