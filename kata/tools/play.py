"""play.py: ask a trained model questions such as Max ( 5 3 9 ) and see its answer and where it looked.

    python play.py [--checkpoint FILE] [--impl IMPL] [EXPRESSION ...]
    python play.py --model decoder [--checkpoint FILE] [--temperature T] [--top-k K] [--top-p P] [--seed N] [PROMPT ...]

With a decoder's checkpoint (train.py --model decoder; checkpoints/pretrained_decoder.npz by default with --model
decoder) it reads prompts such as ( 5 3 9 ) or 5 3 9, writes the answer one token at a time (greedy unless
--temperature is above 0), and shows each token's probability and where the last layer attended when writing it.

Without expressions it reads one per line until Ctrl-D. `Max ( 5 3 9 )`, `Max(5,3,9)` and `max 5 3 9` are the
same question. At a terminal, where Python has readline (Linux, macOS), the line can be edited and the arrows go
through the questions asked, this session's and earlier ones' (kept in .kata/play_history).
"""

import argparse
import re
import sys
from pathlib import Path

import numpy as np

from ..course.exercises import unfinished
from ..course.implementation import ImplementationError, folder_of, load
from ..course.places import raised_at
from ..course.repository import ROOT, STATE, STUDENT, has_reference, named_implementations, python
from . import analysis, checkpoint
from .play_decoder import DecoderPlayer, ParseError, parse_prompt  # noqa: F401 - the decoder's side
from .terminal import bar, heatmap

PRETRAINED = ROOT / "checkpoints" / "pretrained.npz"
PRETRAINED_DECODER = ROOT / "checkpoints" / "pretrained_decoder.npz"
DECODER_LESSONS = ("00", "01", "02", "03", "11", "12", "13")  # what writing an answer with the decoder runs
HISTORY = STATE / "play_history"  # the questions asked at a terminal, across sessions
HISTORY_LINES = 1000
OPERATIONS = ("First", "Second", "Last", "Max", "Min")  # CONTRACT.md section 3
ANSWERS = {"First": lambda a: a[0], "Second": lambda a: a[1], "Last": lambda a: a[-1], "Max": max, "Min": min}
MIN_ARGS = 2  # every example the model ever saw has at least two arguments
MODEL_LESSONS = ("00", "01", "02", "03", "04", "05")  # what answering a question runs
SURE = 0.5  # an answer given a lower probability is called unsure: the other answers together are likelier


def parse(line, max_args):
    """'Max(5, 3,9)' -> ('Max', [5, 3, 9]). Raises ParseError with a message a player can act on."""
    text = line.strip()
    if not text:
        raise ParseError("an empty line: type a question such as Max ( 5 3 9 ), or press Ctrl-D to quit")
    match = re.fullmatch(r"([A-Za-z]+)\s*(.*)", text, flags=re.DOTALL)
    if not match:
        raise ParseError(f"{text!r} does not start with an operation: begin with one of {', '.join(OPERATIONS)}, "
                         f"as in Max ( 5 3 9 )")
    word, rest = match.groups()
    operation = next((op for op in OPERATIONS if op.lower() == word.lower()), None)
    if operation is None:
        raise ParseError(f"{word!r} is not an operation: use one of {', '.join(OPERATIONS)}")
    rest = rest.strip()
    if rest.startswith("(") or rest.endswith(")"):
        if not (rest.startswith("(") and rest.endswith(")")) or rest.count("(") != 1 or rest.count(")") != 1:
            raise ParseError(f"unbalanced parentheses in {text!r}: write {operation} ( 5 3 9 ) or {operation} 5 3 9")
        rest = rest[1:-1]
    items = [item for item in re.split(r"[\s,]+", rest) if item]
    arguments = []
    for item in items:
        if not re.fullmatch(r"[+-]?\d+", item):
            raise ParseError(f"{item!r} is not a number: each argument is one digit from 0 to 9")
        value = int(item)
        if not 0 <= value <= 9:
            raise ParseError(f"{item} is {'above 9' if value > 9 else 'negative'}: each argument is one digit from "
                             f"0 to 9 (the vocabulary has the tokens '0' to '9' only)")
        arguments.append(value)
    if len(arguments) < MIN_ARGS:
        raise ParseError(f"{operation} needs at least {MIN_ARGS} arguments, got {len(arguments)}: "
                         f"for example {operation} ( 5 3 9 )")
    if len(arguments) > max_args:
        raise ParseError(f"{len(arguments)} arguments are too many for this model: its positions go up to "
                         f"{max_args + 3} tokens, so at most {max_args} arguments")
    return operation, arguments


def canonical(operation, arguments):
    return f"{operation} ( {' '.join(str(a) for a in arguments)} )"


class Player:
    """A model loaded from a checkpoint, answering questions."""

    def __init__(self, impl, model, header):
        self.impl, self.model, self.header = impl, model, header
        self.max_args = header["config"]["max_seq_len"] - 3
        trained = header.get("trained_with", {}).get("num_args")
        self.trained_args = tuple(trained) if isinstance(trained, list) else (trained, trained) if trained else None

    def answer(self, line):
        """The text printed for one line of input (a ParseError's message for a line that is not a question)."""
        try:
            operation, arguments = parse(line, self.max_args)
        except ParseError as error:
            return f"? {error}"
        question = canonical(operation, arguments)
        lines = []
        if " ".join(line.split()) != question:
            lines.append(f"read as: {question}")
        if self.trained_args and not self.trained_args[0] <= len(arguments) <= self.trained_args[1]:
            low, high = self.trained_args
            lines.append(f"note: this model was trained on {low if low == high else f'{low} to {high}'} arguments; "
                         f"with {len(arguments)} its answer is a guess")
        ids = self.impl.tokenize(question)
        tokens = np.array([ids], dtype=np.int64)
        probs = analysis.probabilities(self.model.forward(tokens, tokens != self.impl.PAD_TOKEN))[0]
        top = np.argsort(-probs)[:3]
        guess = self.impl.detokenize([int(top[0])])
        truth = str(ANSWERS[operation](arguments))
        sure = probs[top[0]] >= SURE
        if guess == truth:
            verdict = "right" if sure else f"right, but unsure: under {SURE:g}, nearly a guess"
        else:
            verdict = f"wrong: the answer is {truth}" + ("" if sure else f", and unsure: under {SURE:g}")
        lines.append(f"answer: {guess}  (probability {probs[top[0]]:.3f}; {verdict})")
        lines.append("top 3:  " + "   ".join(f"{self.impl.detokenize([int(v)]) or '[PAD]'} {probs[v]:.3f} "
                                             f"{bar(probs[v], 1.0, 10)}" for v in top))
        weights = analysis.first_token_attention(self.model)[-1][0]  # (H, T)
        names = analysis.position_names(ids, self.impl)
        lines.append(heatmap(weights, [f"head {h}" for h in range(weights.shape[0])], names,
                             title=f"where {operation} (the first token) looked in the last layer, per head:"))
        return "\n".join(lines)


def choose_impl(spec, lessons=MODEL_LESSONS):
    """(impl, note): the implementation asked for; by default the student's when the lessons (00-05 for the encoder)
    are finished."""
    if spec is not None:
        try:
            todo = [stub for stub in unfinished(folder_of(spec)) if stub.lesson in lessons]
            if todo:
                raise SystemExit(f"play.py: {spec} is not finished: {todo[0].symbol} (lesson {todo[0].lesson}) and "
                                 f"{len(todo) - 1} more still raise NotImplementedError; `{python()} grader.py` shows "
                                 f"your progress")
            return load(spec), None
        except ImplementationError as error:
            raise SystemExit(f"play.py: {error}") from None
    todo = [stub for stub in unfinished(STUDENT) if stub.lesson in lessons]
    if not todo:
        try:
            return load("exercises"), "using your model's code (exercises/)"
        except ImplementationError as error:
            if not has_reference():
                raise SystemExit(f"play.py: your exercises/ do not import: {error}") from None
            return load("solutions"), f"your exercises/ do not import ({error}); using the reference code"
    if not has_reference():  # the students' edition: no reference code to fall back on
        left = ", ".join(sorted({stub.lesson for stub in todo}))
        raise SystemExit(f"play.py runs the model with your code: finish lessons {left} first (the first exercise "
                         f"left: {todo[0].symbol}, lesson {todo[0].lesson}); `{python()} grader.py` shows your "
                         f"progress")
    needed = "lessons 00-05" if lessons == MODEL_LESSONS else f"lessons {', '.join(lessons)}"
    return load("solutions"), (f"using the reference code: your exercises/ do not yet have {needed} "
                               "finished (then play.py runs your own code)")


class Lines:
    """The questions typed: through input() at a terminal, so that readline (where Python has it) gives line
    editing and a history kept in history_file; else (a pipe, a file, a test's stream) one line of stdin at a time.

    read() returns a line, or "" at the end of the input (Ctrl-D)."""

    def __init__(self, stdin, out, history_file=HISTORY):
        self.stdin, self.out, self.history_file = stdin, out, history_file
        self.terminal = stdin is sys.stdin and out is sys.stdout and _isatty(stdin) and _isatty(out)
        self.readline = _readline() if self.terminal else None
        if self.readline is not None:
            self.readline.set_history_length(HISTORY_LINES)
            try:
                self.readline.read_history_file(history_file)
            except OSError:  # none yet, or unreadable: this session's history only
                pass

    def read(self):
        if self.terminal:
            try:
                return input("> ") + "\n"
            except EOFError:
                return ""
        print("> ", end="", file=self.out, flush=True)
        return self.stdin.readline()

    def close(self):
        """Save the history for the next session (nothing when it cannot be written: the game goes on without)."""
        if self.readline is None:
            return
        try:
            Path(self.history_file).parent.mkdir(parents=True, exist_ok=True)
            self.readline.write_history_file(self.history_file)
        except OSError:
            pass


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _readline():
    """The readline module, which input() then uses, or None where Python has none (Windows: its console edits
    the line of input() itself)."""
    try:
        import readline
    except ImportError:
        return None
    return readline


def main(argv=None, stdin=sys.stdin, out=sys.stdout):
    parser = argparse.ArgumentParser(prog="play.py", description="Ask the trained model questions such as "
                                     "Max ( 5 3 9 ); with a decoder (--model decoder), give it digits to sort "
                                     "such as ( 5 3 9 ) and watch it write.")
    parser.add_argument("--checkpoint", default=None, metavar="FILE",
                        help="a checkpoint written by train.py --checkpoint (default: the pretrained model, "
                             "checkpoints/pretrained.npz, or with --model decoder checkpoints/pretrained_decoder.npz); "
                             "a decoder's checkpoint is recognised by its header")
    parser.add_argument("--model", choices=("encoder", "decoder"), default=None,
                        help="which pretrained model to load without --checkpoint (default: the encoder)")
    fallback = "else the reference" if has_reference() else "else it names the lessons to finish"
    parser.add_argument("--impl", default=None, help=f"the code to run the model with: {named_implementations()} or "
                        f"a folder (default: exercises/ once lessons 00-05 are finished, {fallback}; for the decoder "
                        f"lessons {', '.join(DECODER_LESSONS)})")
    decoding = parser.add_argument_group("the decoder's writing")
    decoding.add_argument("--temperature", type=float, default=0.0, metavar="T",
                          help="0 (default): greedy, the likeliest token each time; above 0: sampled")
    decoding.add_argument("--top-k", type=int, default=None, metavar="K",
                          help="sample among the K likeliest tokens (default: no limit)")
    decoding.add_argument("--top-p", type=float, default=None, metavar="P",
                          help="sample among the likeliest tokens whose probabilities sum to P (default: no limit)")
    decoding.add_argument("--seed", type=int, default=None, metavar="N", help="seeds the sampling (default: a new "
                          "draw every session)")
    parser.add_argument("expression", nargs="*", help="questions to answer (default: none, then it reads one per "
                        "line until Ctrl-D)")
    args = parser.parse_args(argv)
    if not args.temperature >= 0:
        parser.error(f"--temperature must be at least 0, got {args.temperature}")
    if args.top_k is not None and args.top_k < 1:
        parser.error(f"--top-k must be at least 1, got {args.top_k}")
    if args.top_p is not None and not 0 < args.top_p <= 1:
        parser.error(f"--top-p must be in (0, 1], got {args.top_p}")
    path = args.checkpoint or str(PRETRAINED_DECODER if args.model == "decoder" else PRETRAINED)
    kind = checkpoint.DECODER if args.model == "decoder" else checkpoint.ENCODER
    if args.checkpoint is not None:  # the checkpoint says which model it holds
        try:
            kind = checkpoint.kind_of(checkpoint.load(path)[0])
        except checkpoint.CheckpointError as error:
            print(f"play.py: {error}", file=sys.stderr)
            return 1
        wanted = {"decoder": checkpoint.DECODER, "encoder": checkpoint.ENCODER}.get(args.model, kind)
        if kind != wanted:
            print(f"play.py: {path} holds a {kind}, not the {args.model}'s model (a "
                  f"{wanted}): leave out --model, or give a checkpoint of train.py --model {args.model}",
                  file=sys.stderr)
            return 1
    decoder = kind == checkpoint.DECODER
    if not decoder and (args.temperature or args.top_k is not None or args.top_p is not None or args.seed is not None):
        parser.error("--temperature, --top-k, --top-p and --seed are for the decoder (--model decoder)")
    impl, note = choose_impl(args.impl, DECODER_LESSONS if decoder else MODEL_LESSONS)
    try:
        model, header = checkpoint.restore(impl, path)
    except checkpoint.CheckpointError as error:
        print(f"play.py: {error}", file=sys.stderr)
        return 1
    if decoder:
        player = DecoderPlayer(impl, model, header, args.temperature, args.top_k, args.top_p, args.seed)
    else:
        player = Player(impl, model, header)
    if args.expression:
        for expression in args.expression:
            print(player.answer(expression), file=out)
        return 0
    metrics = header.get("metrics", {})
    if decoder:
        accuracy = (f", held-out exact match {metrics['test_exact_match']:.4f}" if "test_exact_match" in metrics
                    else "")
        print(f"Loaded the decoder {path}{accuracy}" + (f"; {note}" if note else "") + ".\n"
              "Type digits to sort, such as ( 5 3 9 ) or 5 3 9; it writes the answer one token at a time. "
              "Ctrl-D quits.", file=out)
    else:
        accuracy = f", test accuracy {metrics['test_accuracy']:.4f}" if "test_accuracy" in metrics else ""
        print(f"Loaded {path}{accuracy}" + (f"; {note}" if note else "") + ".\n"
              f"Ask a question such as Max ( 5 3 9 ), Max(5,3,9) or min 4 1 7 (operations: {', '.join(OPERATIONS)}; "
              f"digits 0-9). Ctrl-D quits.", file=out)
    lines = Lines(stdin, out)
    try:
        return _loop(player, lines, out)
    finally:
        lines.close()


def _loop(player, lines, out):
    while True:
        try:
            line = lines.read()
        except KeyboardInterrupt:
            line = ""
        if not line:  # Ctrl-D (end of input)
            print("\nbye", file=out)
            return 0
        try:
            print(player.answer(line), file=out)
        except KeyboardInterrupt:
            print("\nbye", file=out)
            return 0
        except Exception as error:  # the implementation's own code failed on this question; the loop goes on
            print(f"! the model's code raised {type(error).__name__}: {error} (at {raised_at(error) or '?'})", file=out)

