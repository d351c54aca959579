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

`rotate` (time-spaced backup retention) and `journal` (the journal of `state log`) are the
write paths with a check of their own, below.
"""

import calendar
import datetime
import hashlib
import json
import os
import subprocess
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


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def generations(d):
    """The main file and its backups, newest first: the order of the generations."""
    names = [os.path.basename(d.state), os.path.basename(d.state) + ".bak"]
    n = 1
    while os.path.exists(f"{d.state}.bak.{n}"):
        names.append(f"{os.path.basename(d.state)}.bak.{n}")
        n += 1
    return [os.path.join(d.dir, name) for name in names if os.path.exists(os.path.join(d.dir, name))]


# mamfast's defaults (README, Backups): state.backup_depth 3, backup_hourly 0, backup_daily 7.
BACKUP_DEPTH, BACKUP_DAILY = 3, 7


def policy_keeps(mtimes):
    """Which generations (mtimes, newest first) the retention policy keeps, as README's
    Backups section states it, written apart from mamfast's own code: the newest
    BACKUP_DEPTH, then the newest of each of the BACKUP_DAILY newest days (UTC: the suite runs
    mamfast with TZ=UTC) whose newest generation is not kept already."""
    keep = [i < BACKUP_DEPTH for i in range(len(mtimes))]
    taken, previous = 0, None
    for i, t in enumerate(mtimes):
        if taken == BACKUP_DAILY:
            break
        day = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).date()
        if day == previous:
            continue
        previous = day
        if not keep[i]:
            keep[i] = True
            taken += 1
    return keep


def rotation_setup(d):
    """Backups spread over three weeks, each a real mamfast write of a main file given an older
    time first (a rename keeps the time, so it becomes the generation's). Before the recorded
    write: .bak (2 days ago), .bak.1 and .bak.2 (8 days ago, 12:00 and 09:00) are the last 3,
    then one a day from 9 to 15 days ago (daily 7). The recorded write makes the main file
    `.bak`, so the 09:00 generation of 8 days ago falls out of the last 3 into a day a newer
    generation already holds: it is dropped, `.bak` and `.bak.1` move up into its place and the
    seven daily ones keep their numbers."""
    midnight = calendar.timegm(datetime.datetime.now(datetime.timezone.utc).date().timetuple())
    at = lambda days, hour: midnight - days * 86400 + hour * 3600
    for n, days in enumerate([20, 19, 18]):  # the three generations the suite made
        t = at(days, 9)
        os.utime(f"{d.state}.bak" + ("" if n == 2 else f".{2 - n}"), (t, t))
    plan = [at(days, 9) for days in range(15, 7, -1)] + [at(8, 12), at(2, 9)]
    for n, t in enumerate(plan):
        os.utime(d.state, (t, t))
        d.mamfast("state", "mark-failed", f"F0{100 + n:08d}", "--error", f"spaced {n}")
    gens = [(sha256(p), os.stat(p).st_mtime_ns / 1e9) for p in generations(d)]
    keeps = policy_keeps([t for _, t in gens])
    if all(keeps) or keeps[-1] is False:
        raise SystemExit(f"setup: the recorded write would drop no generation in the middle: {keeps}")
    with open(os.path.join(os.environ["PL_WORK"], "generations.json"), "w") as f:
        json.dump(gens, f)


def rotation_kept(d, outcome):
    """Every generation the policy keeps is in the directory once the main file is new (the
    common check saw to the old side: nothing at all lost), and mamfast kept exactly those."""
    work = os.environ["PL_WORK"]
    gens = json.load(open(os.path.join(work, "generations.json")))
    keeps = policy_keeps([t for _, t in gens])
    kept = {sha for (sha, _), keep in zip(gens, keeps) if keep}
    finished = set(json.load(open(os.path.join(work, "after.json"))).values())
    assert kept <= finished and len(finished - kept) == 1, (
        "the finished command kept other generations than the policy: "
        f"{len(kept - finished)} kept by the policy missing, {len(finished - kept) - 1} too many")
    if outcome == "new":
        have = {sha256(os.path.join(d.dir, e)) for e in os.listdir(d.dir)
                if os.path.isfile(os.path.join(d.dir, e))}
        assert kept <= have, f"main file new, but {len(kept - have)} generation(s) the policy keeps are gone"


JOURNAL = "processed.json.log"
JOURNALED = "journal power cut"  # the recorded command's error: its record names it


def fingerprint(path):
    st = os.stat(path)
    return (st.st_size, st.st_mtime_ns, st.st_ino)


def same_file(after, path):
    return after is not None and (after["size"], after["mtime_ns"], after["ino"]) == fingerprint(path)


def journal_agrees(d, outcome):
    """The journal's lines are whole records (a cut last line only when mamfast skips it with
    a warning); no record tells of a change the main file does not hold; and either the last
    record's `after` is the main file, or `state log --json` reports the gap as an `outside`
    record whose `after` is the main file."""
    data = open(os.path.join(d.dir, JOURNAL), "rb").read()
    lines = [line for line in data.split(b"\n") if line.strip()]
    records = []
    for n, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except ValueError:
            assert n == len(lines) - 1, f"journal line {n + 1} of {len(lines)} is not a record"
            torn = line
        else:
            torn = None
    ours = [r for r in records if JOURNALED in r.get("command", [])]
    assert len(ours) <= 1, f"the command is journaled {len(ours)} times"
    if outcome == "old":
        assert not ours, "the journal records the command's change, but the main file is the old state"
    assert records, "the journal has no record left"
    if os.path.exists(os.path.join(os.path.dirname(d.dir), "command-exited-0")):
        assert ours, "the command had exited 0, but its record is not in the journal"
    log = subprocess.run([os.environ["PL_MAMFAST"], "--state-file", d.state, "state", "log",
                          "--json", "--limit", "1"],
                         env={"PATH": os.environ.get("PATH", ""), "HOME": os.path.join(os.environ["PL_WORK"], "home"),
                              "MAMFAST_CONFIG": "", "TZ": "UTC", "NO_COLOR": "1"},
                         stdin=subprocess.DEVNULL, capture_output=True)
    assert log.returncode == 0, f"state log exited {log.returncode}: {log.stderr!r}"
    if torn is not None:
        assert b"not a journal record" in log.stderr, f"a cut last line ({len(torn)} bytes) and no warning: {log.stderr!r}"
    last = records[-1]
    if same_file(last["after"], d.state):
        assert outcome == "old" or (ours and last is ours[0]), "the last record's after is the main file, but not the command's"
    else:
        newest = json.loads(log.stdout)[0]
        assert newest["kind"] == "outside" and same_file(newest["after"], d.state), (
            f"the last record is not the main file, and state log does not report the gap: {newest!r}")
    # Which case each crash point met, for the figures RELIABILITY.md gives.
    case = ("agrees" if same_file(last["after"], d.state) else "gap") + (" torn" if torn else "")
    with open(os.path.join(os.environ["PL_WORK"], "journal-cases.log"), "a") as f:
        f.write(f"{outcome} {case}\n")


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
    # A write whose backup rotation drops a generation in the middle of time-spaced ones.
    "rotate": Scenario(rotation_setup, lambda d: [
        "state", "mark-failed", "B000000042", "--error", "rotation test"], check=rotation_kept),
    # A write and its journal record (`state log`).
    "journal": Scenario(nothing, lambda d: [
        "state", "mark-failed", "B000000042", "--error", JOURNALED],
        check=journal_agrees, own_files=(JOURNAL,)),
    # The negative control: the naive write (temp file, rename, no fsync) must be caught.
    "naive-writer": Scenario(nothing, lambda d: ("exec", [
        "python3", d.here("naive_writer.py"), d.state])),
}
