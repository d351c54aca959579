#!/usr/bin/env python3
"""The script `outagefs run-suite` runs for one power-loss scenario (tests/power_loss.rs drives it).

outagefs calls it three times over: `prepare IMAGE` (make the file system and the state, not
recorded), `changes FILE` (FILE is the image through FUSE: every block written and every flush
is recorded while the scenario's command runs), then `verify FILE` once per crash point (the
image as it would be after a power cut there: the writes after the last flush partly dropped).
The scenario comes from PL_SCENARIO (scenarios.py); PL_WORK is a directory outside the image
for what the crash points are compared with and for the verdicts; PL_MAMFAST is the binary;
PL_FS is `ext4` (default; mounted with noauto_da_alloc, so that ext4's flush on a rename over
a file does not hide a missing fsync) or `xfs`.

At every crash point:
1. the main file, read as the Python tool reads it (`json.load`, no recovery), is the old or
   the new state (the old bytes too, when the old main file was corrupt);
2. every file of the state's directory that existed before (backup generations, the corrupt
   bytes) is still there, under any name, when the main file is old; every file the finished
   command left is there when it is new (a generation the command drops counts once it did);
3. mamfast's own read (`state export`, as a dry run: the check changes nothing) exits 0 and gives the old or the new state;
4. once the command exited 0 (a marker file fsynced after it), both reads give the new state.
A verdict line per crash point goes to PL_WORK/verdicts.log; a failure exits 1 (outagefs then
stops and prints the crash point).
"""

import collections
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys

from scenarios import SCENARIOS

HERE = os.path.dirname(os.path.abspath(__file__))
WORK = os.environ["PL_WORK"]
FS = os.environ.get("PL_FS", "ext4")
ENTRIES = int(os.environ.get("PL_ENTRIES", "2000"))
SCENARIO = SCENARIOS[os.environ["PL_SCENARIO"]]
MAIN = "processed.json"
MARKER = "command-exited-0"
NOW = "2026-11-26T10:00:00+00:00"


def mount(image, mnt):
    options = {"ext4": "loop,noauto_da_alloc", "xfs": "loop"}[FS]
    os.makedirs(mnt, exist_ok=True)
    subprocess.run(["mount", "-t", FS, "-o", options, image, mnt], check=True)


def umount(mnt):
    subprocess.run(["umount", mnt], check=True)


def mamfast(state, *args):
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.path.join(WORK, "home"),
           "MAMFAST_CONFIG": "", "MAMFAST_NOW": NOW, "TZ": "UTC", "NO_COLOR": "1"}
    return subprocess.run([os.environ["PL_MAMFAST"], "--state-file", state, *args], env=env,
                          stdin=subprocess.DEVNULL, capture_output=True)


def python_dump(state, path):
    """Writes `state` as the Python tool does (fsynced: setup is not what is tested)."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=2, ensure_ascii=False, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())


def realistic_state(n):
    """`n` entries, nine in ten processed: statuses, checkpoints, paths (some gone), failures."""
    rng = random.Random(14)
    processed, failed = {}, {}
    statuses = ["COMPLETE"] * 6 + ["STAGED", "METADATA_FETCHED", "TORRENT_CREATED", "UPLOADED"]
    for i in range(n - n // 10):
        status = rng.choice(statuses)
        id_ = f"B0{i:08d}"
        day = 1 + i % 25
        processed[id_] = {
            "asin": id_, "author": f"Author {i % 97}", "status": status,
            "title": f"Book {i} — Ünïcödé “quoted” \\ slash",
            "processed_at": f"2026-11-{day:02d}T09:09:35.{i % 1000000:06d}",
            "staging_dir": f"/srv/mam/staging/Book {i}" if rng.random() < 0.5 else None,
            "torrent_path": f"/srv/mam/torrents/Book {i}.torrent" if status != "STAGED" else None,
            "infohash": f"{rng.getrandbits(160):040x}" if status in ("UPLOADED", "COMPLETE") else None,
            "checkpoints": {"staged_at": f"2026-11-{day:02d}T08:00:00.000001"},
        }
    for i in range(n // 10):
        id_ = f"F0{i:08d}"
        day = 1 + i % 28
        failed[id_] = {
            "asin": id_, "author": f"Author {i % 89}", "title": f"Failed {i} 転生したらスライム",
            "error": "Audnex returned 404 for ASIN", "error_type": rng.choice(["AudnexError", "HTTPError"]),
            "failed_at": f"2026-10-{day:02d}T09:09:35.274036",
            "first_failed_at": f"2026-09-{day:02d}T09:09:35.067172",
            "retry_count": rng.randrange(1, 6), "source_dir": None,
        }
    return {"version": 2, "processed": processed, "failed": failed}


class Setup:
    """What a scenario's setup and command see (scenarios.py)."""

    def __init__(self, mnt):
        self.dir = os.path.join(mnt, "state")
        self.state = os.path.join(self.dir, MAIN)

    def here(self, name):
        return os.path.join(HERE, name)

    def mamfast(self, *args):
        run = mamfast(self.state, *args)
        if run.returncode != 0:
            sys.exit(f"setup: mamfast {' '.join(args)} exited {run.returncode}: {run.stderr!r}")
        return run

    def corrupt_main(self):
        """Cuts the main file in half, fsynced (the backups stay valid)."""
        with open(self.state, "r+b") as f:
            f.truncate(os.path.getsize(self.state) // 2)
            os.fsync(f.fileno())

    def outside(self, name, lines):
        """A JSON Lines file outside the recorded image; returns its path."""
        path = os.path.join(WORK, name)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        return path


def counted(entry):
    """Whether a file of the state's directory is one no write may lose: not the lock, nor the
    journal (`.log`, `.log.1`), which every write appends to after its commit (the `journal`
    scenario checks it), nor a scenario's own files."""
    return (entry != MAIN + ".lock" and not entry.startswith(MAIN + ".log")
            and not entry.startswith(SCENARIO.own_files))


def snapshot(d, name):
    """Records the state directory's files (their SHA-256) and a copy of the main file."""
    files = {}
    for entry in sorted(os.listdir(d.dir)):
        path = os.path.join(d.dir, entry)
        if counted(entry) and os.path.isfile(path) and not os.path.islink(path):
            with open(path, "rb") as f:
                files[entry] = hashlib.sha256(f.read()).hexdigest()
    with open(os.path.join(WORK, name + ".json"), "w") as f:
        json.dump(files, f, indent=1)
    shutil.copyfile(d.state, os.path.join(WORK, name + "-main"))


def prepare(image):
    mkfs = {"ext4": ["mkfs.ext4", "-q"], "xfs": ["mkfs.xfs", "-q", "-f"]}[FS]
    # mkfs.xfs refuses a file system under 300 MB unless run by fstests (these variables set):
    # a small image keeps each crash point cheap (outagefs copies the whole image for each).
    fstests = {"QA_CHECK_FS": "1", "TEST_DIR": WORK, "TEST_DEV": image}
    subprocess.run(["truncate", "-s", "48M", image], check=True)
    subprocess.run([*mkfs, image], check=True, env={**os.environ, **fstests})
    mount(image, "mnt")
    try:
        d = Setup("mnt")
        os.makedirs(d.dir)
        python_dump(realistic_state(ENTRIES), d.state)
        for n in range(3):  # three backup generations, each a real mamfast write
            d.mamfast("state", "mark-failed", f"F0{n:08d}", "--error", f"setup {n}")
        SCENARIO.setup(d)
        snapshot(d, "before")
    finally:
        umount("mnt")


def changes(image):
    mount(image, "mnt")
    try:
        d = Setup("mnt")
        command = SCENARIO.command(d)
        if isinstance(command, tuple):
            run = subprocess.run(command[1], stdin=subprocess.DEVNULL, capture_output=True)
        else:
            run = mamfast(d.state, *command)
        with open(os.path.join(WORK, "command.log"), "w", encoding="utf-8") as f:
            f.write(f"exit {run.returncode}\n{run.stderr.decode(errors='replace')}")
        if run.returncode == 0:
            fd = os.open(os.path.join("mnt", MARKER), os.O_WRONLY | os.O_CREAT, 0o644)
            os.fsync(fd)
            os.close(fd)
            fd = os.open("mnt", os.O_RDONLY)
            os.fsync(fd)
            os.close(fd)
        snapshot(d, "after")
    finally:
        umount("mnt")


def parse(data):
    """The state as the Python tool's `json.load` reads it, or None when it refuses."""
    try:
        return json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None


def check(mnt):
    """Returns "old" or "new", or raises AssertionError saying what is wrong."""
    d = Setup(mnt)
    old_bytes = open(os.path.join(WORK, "before-main"), "rb").read()
    old, new = parse(old_bytes), parse(open(os.path.join(WORK, "after-main"), "rb").read())
    before = json.load(open(os.path.join(WORK, "before.json")))
    after = json.load(open(os.path.join(WORK, "after.json")))

    assert os.path.isfile(d.state), "the main file is missing"
    main_bytes = open(d.state, "rb").read()
    main = parse(main_bytes)
    if main is not None and main == new:
        outcome = "new"
    elif main_bytes == old_bytes or (main is not None and main == old):
        outcome = "old"
    else:
        why = "JSON Python's json.load refuses" if main is None else "another state"
        raise AssertionError(f"the main file ({len(main_bytes)} bytes) is neither the old nor the new state: {why}")

    have = collections.Counter()
    for entry in os.listdir(d.dir):
        path = os.path.join(d.dir, entry)
        if counted(entry) and os.path.isfile(path):
            have[hashlib.sha256(open(path, "rb").read()).hexdigest()] += 1
    expected = before if outcome == "old" else after
    missing = collections.Counter(expected.values()) - have
    lost = sorted(name for name, sha in expected.items() if sha in missing)
    assert not lost, f"main file {outcome}, but the content of {lost} is nowhere in the directory"

    # A dry run: the check observes the crash point's files and changes none of them (a plain
    # read would record a gap in the journal, or repair a corrupt main file, on the image).
    run = mamfast(d.state, "--dry-run", "state", "export")
    assert run.returncode == 0, f"mamfast state export exited {run.returncode}: {run.stderr!r}"
    read = parse(run.stdout)
    assert read is not None and read in (old, new), "mamfast read neither the old nor the new state"

    if os.path.exists(os.path.join(mnt, MARKER)):
        assert outcome == "new", "the command had exited 0, but the main file is the old state"
        assert read == new, "the command had exited 0, but mamfast read the old state"
    if SCENARIO.check:
        SCENARIO.check(d, outcome)
    return outcome


def verify(image):
    try:
        mount(image, "mnt")
    except subprocess.CalledProcessError as e:
        verdict(f"FAIL the file system does not mount: {e}")
        return 1
    try:
        outcome = check("mnt")
        verdict(outcome)
        return {"old": 10, "new": 11}[outcome]
    except AssertionError as e:
        verdict(f"FAIL {e}")
        return 1
    finally:
        umount("mnt")


def verdict(line):
    with open(os.path.join(WORK, "verdicts.log"), "a", encoding="utf-8") as f:
        f.write(line + "\n")


if __name__ == "__main__":
    step, path = sys.argv[1], sys.argv[2]
    if step == "prepare":
        prepare(path)
    elif step == "changes":
        changes(path)
    elif step == "verify":
        sys.exit(verify(path))
    else:
        sys.exit(f"unknown step {step!r}: expected prepare, changes or verify")
