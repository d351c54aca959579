"""What one mamfast_state call costs over starting the process: `python3 bench.py [N]`.

Runs, interleaved and N times each, `mamfast --version` (the floor: starting mamfast) and
module calls on a small state (20 processed, 5 failed entries) in a temporary directory, and
prints the median wall time and CPU time (user + system, Python and mamfast together) of each
and its overhead over the floor. Uses $MAMFAST_BIN (else mamfast on
PATH); build it with `cargo build --release` to measure what an operator runs.
"""

from __future__ import annotations

import json
import logging
import resource
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mamfast_state as ms  # noqa: E402


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    logging.disable(logging.WARNING)  # the module logs each mark_failed
    binary = os.environ.get("MAMFAST_BIN") or shutil.which("mamfast")
    if not binary:
        sys.exit("set MAMFAST_BIN or put mamfast on PATH")
    os.environ["MAMFAST_BIN"] = binary
    os.environ["MAMFAST_CONFIG"] = ""
    with tempfile.TemporaryDirectory() as tmp:
        state_file = Path(tmp) / "processed.json"
        state = {
            "version": 2,
            "processed": {f"B{i:09d}": {"title": f"Book {i}", "status": "COMPLETE"} for i in range(20)},
            "failed": {f"F{i:09d}": {"error": "boom", "retry_count": 1} for i in range(5)},
        }
        state_file.write_text(json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True))
        release = SimpleNamespace(
            asin="B000000001", title="Book 1", author="A", source_dir=None, staging_dir=None,
            torrent_path=None, status=SimpleNamespace(name="COMPLETE"), display_name="Book 1",
        )
        calls = {
            "mamfast --version": lambda: subprocess.run([binary, "--version"], capture_output=True, check=True),
            "is_processed (export)": lambda: ms.is_processed("B000000001"),
            "should_skip_stage": lambda: ms.should_skip_stage(release, "uploaded"),
            "mark_failed (one write)": lambda: ms.mark_failed(release, "boom"),
            "update_state (export + import)": lambda: ms.update_state(lambda s: s.__setitem__("n", s.get("n", 0) + 1)),
        }
        times: dict[str, list[float]] = {name: [] for name in calls}
        # CPU time (this process and the mamfast it ran, user + system): what a call costs
        # whatever else the machine is doing, unlike the wall time.
        cpu: dict[str, list[float]] = {name: [] for name in calls}
        settings = SimpleNamespace(paths=SimpleNamespace(state_file=state_file))
        with patch.object(ms, "get_settings", return_value=settings):
            for _ in range(n):
                for name, call in calls.items():
                    start, cpu_start = time.perf_counter(), cpu_seconds()
                    call()
                    times[name].append((time.perf_counter() - start) * 1000)
                    cpu[name].append((cpu_seconds() - cpu_start) * 1000)
    floor = statistics.median(times["mamfast --version"])
    cpu_floor = statistics.median(cpu["mamfast --version"])
    print(f"N = {n}, {binary}, load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs")
    print(f"{'call':32} {'wall':>9} {'over':>9} {'cpu':>9} {'over':>9}  (medians)")
    for name, samples in times.items():
        wall, used = statistics.median(samples), statistics.median(cpu[name])
        print(
            f"{name:32} {wall:6.2f} ms {wall - floor:6.2f} ms {used:6.2f} ms {used - cpu_floor:6.2f} ms"
        )


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


if __name__ == "__main__":
    main()
