#!/usr/bin/env python3
"""Record a pipeline run's checkpoints in processed.json with one call to mamfast.

Every operation goes in as one JSON line to `mamfast state apply -`, which applies them in
order under one lock and writes the file once: all of them, or (exit 2 for a malformed line,
65 for a refused one, the message naming the line) none.

    python3 examples/record_run.py [--state-file processed.json] [--dry-run]

MAMFAST (default: `mamfast` on PATH) names the binary to run.
"""

import json
import os
import subprocess
import sys


def record_run(operations, mamfast="mamfast", extra_args=()):
    """Applies `operations` (dicts: {"op": ..., "id": ..., fields}) in one write.

    Returns mamfast's per-line report; raises CalledProcessError (its stderr says which line
    and why) if any line was refused, in which case nothing was written.
    """
    lines = "".join(json.dumps(op, ensure_ascii=False) + "\n" for op in operations)
    done = subprocess.run(
        [mamfast, *extra_args, "state", "apply", "--json", "-"],
        input=lines,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def main():
    run = [
        {"op": "checkpoint", "id": "B0EXAMPLE1", "stage": "staged",
         "staging_dir": "/srv/mam/staging/Example", "title": "An Example",
         "author": "A. Writer"},
        {"op": "checkpoint", "id": "B0EXAMPLE1", "stage": "metadata"},
        {"op": "mark-failed", "id": "B0EXAMPLE2", "error": "Audnex returned 404",
         "error_type": "AudnexError"},
    ]
    mamfast = os.environ.get("MAMFAST", "mamfast")
    try:
        report = record_run(run, mamfast, sys.argv[1:])
    except subprocess.CalledProcessError as e:
        sys.stderr.write(e.stderr)
        return e.returncode
    for line in report["lines"]:
        print(f"line {line['line']}: {line['op']} {line['id']}: {line['result']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
