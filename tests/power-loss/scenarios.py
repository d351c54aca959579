"""The power-loss scenarios: what state a scenario starts from and which command it records.

Each scenario is a `Scenario(setup, command)`:
- `setup(d)` gets `d`, a `Setup` on the mounted file system before anything is recorded: it
  holds a state of a few thousand entries with three backup generations already; `setup` may
  change it further (`d.corrupt_main()`, `d.write(name, text)`, `d.mamfast(*args)`).
- `command(d)` returns the command line whose writes are recorded: a list of arguments for
  `mamfast --state-file <state>` (a list of strings), or `("exec", [argv...])` for another
  program (the negative control).
- `check(d, outcome)` (optional) checks more at each crash point, after the common checks;
  `outcome` is "old" or "new" (the main file's state). It raises AssertionError on a failure.
- `own_files` (optional) are name prefixes of files beside the state that the command may
  change in place (a journal it appends to): left out of the "nothing lost" check, for
  `check` to judge.

`suite.py` checks every crash point of every scenario the same way (see its docstring). A new
write path is a new entry in SCENARIOS; `tests/power_loss.rs` lists which names it runs.

Write paths still to add once their commands exist, each a few lines:
- time-spaced backup rotation: `Scenario(nothing, lambda d: [<the write that rotates>])`,
  with setup giving the generations the spacing needs (`d.mamfast(...)` with `MAMFAST_NOW`
  set, or `os.utime` on the backups); the common check already compares generations as a
  multiset, so a generation moved to another slot is not lost and one dropped is allowed
  only once the command committed.
- the journal of `state log`: `Scenario(nothing, lambda d: [<a write that journals>],
  check=journal_agrees, own_files=("<journal name>",))`, where `journal_agrees(d, outcome)`
  runs `d.mamfast("state", "log", ...)` and asserts that the journal's last record is the
  state's (outcome "new") or the one before, or that the gap is reported.
"""

from dataclasses import dataclass
from typing import Callable, Optional, Tuple


@dataclass
class Scenario:
    setup: Callable
    command: Callable
    check: Optional[Callable] = None
    own_files: Tuple[str, ...] = ()


def nothing(_d):
    pass


def ids(prefix, first, count):
    return [f"{prefix}{i:08d}" for i in range(first, first + count)]


def apply_ops(d):
    """A batch of 300 operations of every kind, as a pipeline run records them."""
    lines = []
    for i, id_ in enumerate(ids("B1", 0, 100)):
        lines.append({"op": "checkpoint", "id": id_, "stage": "staged",
                      "staging_dir": f"/srv/mam/staging/new {i}", "title": f"New {i}"})
    for i, id_ in enumerate(ids("B1", 100, 100)):
        lines.append({"op": "mark-failed", "id": id_, "error": f"Audnex 503 ({i})",
                      "error_type": "AudnexError"})
    lines += [{"op": "retry", "id": id_} for id_ in ids("F0", 0, 50)]
    lines += [{"op": "clear", "id": id_} for id_ in ids("B0", 0, 50)]
    return d.outside("ops.jsonl", lines)


SCENARIOS = {
    # A single update: one entry's failure recorded.
    "mark-failed": Scenario(nothing, lambda d: [
        "state", "mark-failed", "B000000042", "--error", "power cut test"]),
    # A read that finds a corrupt main file and recovers it from `.bak` (the corrupt bytes kept).
    "recover": Scenario(lambda d: d.corrupt_main(), lambda d: ["state", "list", "--counts"]),
    # An older generation made the main file again.
    "restore": Scenario(nothing, lambda d: ["state", "restore", ".bak.1"]),
    # Stale processed entries and failed entries past a TTL removed (an update of every entry).
    "prune": Scenario(nothing, lambda d: ["state", "prune", "--failed-older-than", "30d"]),
    # Many operations in one write.
    "apply": Scenario(nothing, lambda d: ["state", "apply", apply_ops(d)]),
    # A bulk retry: 200 IDs, one write.
    "retry": Scenario(nothing, lambda d: ["state", "retry", *ids("F0", 0, 200)]),
    # The negative control: the naive write (temp file, rename, no fsync) must be caught.
    "naive-writer": Scenario(nothing, lambda d: ("exec", [
        "python3", d.here("naive_writer.py"), d.state])),
}
