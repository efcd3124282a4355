"""python -m kata.sandbox --probe OUT --seconds S --policy POLICY.json FOLDER: write probe(FOLDER) as JSON to OUT
(the grader runs it in a process of its own: the sandbox adopts and reaps orphans, which only a single-purpose
process may do)."""

import argparse
import json
from pathlib import Path

from .policy import Policy
from .probe import probe


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m kata.sandbox")
    parser.add_argument("--probe", metavar="OUT", required=True, help="write probe(folder) as JSON to OUT")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the import may take (default "
                        "%(default)s)")
    parser.add_argument("--policy", metavar="POLICY.json", required=True, help="a Policy's to_json(), as JSON")
    parser.add_argument("folder", help="the implementation folder to import")
    args = parser.parse_args(argv)
    policy = Policy.from_json(json.loads(Path(args.policy).read_text(encoding="utf-8")))
    Path(args.probe).write_text(json.dumps(probe(args.folder, args.seconds, policy)), encoding="utf-8")


if __name__ == "__main__":
    main()
