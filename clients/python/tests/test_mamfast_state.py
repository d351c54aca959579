"""Tests of mamfast_state against the real mamfast binary ($MAMFAST_BIN, as .ci/run sets it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import mamfast_state as ms  # noqa: E402

BIN = os.environ.get("MAMFAST_BIN") or str(
    Path(__file__).resolve().parents[3] / "target" / "debug" / "mamfast"
)


def release(**fields):
    base = dict(
        asin=None,
        title=None,
        author=None,
        source_dir=None,
        staging_dir=None,
        torrent_path=None,
        status=ms.ReleaseStatus.DISCOVERED,
        display_name="release",
    )
    base.update(fields)
    return SimpleNamespace(**base)


@pytest.fixture(autouse=True)
def state_file(tmp_path, monkeypatch):
    """Each test: its own state file, mamfast hermetic (no config, own HOME)."""
    path = tmp_path / "processed.json"
    monkeypatch.setenv("MAMFAST_BIN", BIN)
    monkeypatch.setenv("MAMFAST_CONFIG", "")
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("MAMFAST_STATE_FILE", "MAMFAST_DRY_RUN", "MAMFAST_QUIET", "MAMFAST_VERBOSE"):
        monkeypatch.delenv(name, raising=False)
    settings = SimpleNamespace(paths=SimpleNamespace(state_file=path))
    with patch.object(ms, "get_settings", return_value=settings):
        yield path


def write(path: Path, state: dict) -> None:
    path.write_text(json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True), "utf-8")


def on_disk(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def test_load_state_of_a_missing_file_is_empty_and_current(state_file):
    assert ms.load_state() == {"version": 2, "processed": {}, "failed": {}}
    assert not state_file.exists()


def test_load_state_migrates_a_version_1_file(state_file):
    write(state_file, {"version": 1, "processed": {"B1": {"title": "T"}}, "failed": {}})
    state = ms.load_state()
    assert state["version"] == 2
    assert state["processed"]["B1"]["checkpoints"] == {}


def test_save_state_replaces_the_state_and_keeps_a_backup(state_file):
    write(state_file, {"version": 2, "processed": {"OLD": {}}, "failed": {}})
    ms.save_state({"version": 2, "processed": {"NEW": {"title": "n"}}, "failed": {}})
    assert list(on_disk(state_file)["processed"]) == ["NEW"]
    assert "OLD" in on_disk(state_file.with_suffix(".json.bak"))["processed"]


def test_update_state_applies_fn_and_writes_python_bytes(state_file):
    def add(state):
        state["processed"]["B1"] = {"title": "Ünïcödé “quoted”", "status": "STAGED"}

    ms.update_state(add)
    expected = {"version": 2, "processed": {"B1": {"title": "Ünïcödé “quoted”", "status": "STAGED"}}, "failed": {}}
    assert state_file.read_bytes() == json.dumps(
        expected, indent=2, ensure_ascii=False, sort_keys=True
    ).encode("utf-8")


def test_update_state_writes_nothing_when_fn_raises(state_file):
    write(state_file, {"version": 2, "processed": {}, "failed": {}})
    before = state_file.read_bytes()

    def boom(state):
        state["processed"]["X"] = {}
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        ms.update_state(boom)
    assert state_file.read_bytes() == before


def test_update_state_retries_when_another_writer_came_in_between(state_file):
    calls = []

    def fn(state):
        calls.append(dict(state["failed"]))
        if len(calls) == 1:  # another writer, between our read and our import
            subprocess.run(
                [BIN, "--state-file", str(state_file), "-q", "state", "mark-failed", "F1", "--error", "e"],
                check=True,
            )
        state["processed"]["B1"] = {}

    ms.update_state(fn)
    assert len(calls) == 2 and "F1" in calls[1]
    state = on_disk(state_file)
    assert "F1" in state["failed"] and "B1" in state["processed"]


def test_mark_processed_records_the_release_and_leaves_failed(state_file):
    ms.mark_failed(release(asin="B1", title="T"), "boom")
    ms.mark_processed(
        release(asin="B1", title="T", author="A", status=ms.ReleaseStatus.COMPLETE),
        infohash="abc",
    )
    entry = ms.load_state()["processed"]["B1"]
    assert (entry["asin"], entry["title"], entry["author"], entry["infohash"]) == ("B1", "T", "A", "abc")
    assert entry["status"] == "COMPLETE" and entry["staging_dir"] is None
    assert entry["checkpoints"]["uploaded_at"]
    assert ms.is_processed("B1") and not ms.is_failed("B1")


def test_mark_processed_without_asin_uses_the_source_dir_and_writes_null_asin(state_file):
    ms.mark_processed(release(title="T", source_dir=Path("/tmp/audiobooks/x")))
    entry = ms.load_state()["processed"]["/tmp/audiobooks/x"]
    assert entry["asin"] is None and entry["author"] is None


def test_no_identifier_writes_nothing(state_file):
    ms.mark_processed(release(title="T"))
    ms.mark_failed(release(title="T"), "e")
    ms.checkpoint_stage(release(title="T"), "staged")
    assert not state_file.exists()
    assert ms.should_skip_stage(release(title="T"), "staged") is False


def test_mark_failed_counts_and_keeps_the_first_failure(state_file):
    rel = release(asin="B1", title="T")
    ms.mark_failed(rel, "first")
    first = ms.load_state()["failed"]["B1"]["first_failed_at"]
    ms.mark_failed(rel, "second", error_type="NetworkError")
    entry = ms.load_state()["failed"]["B1"]
    assert entry["retry_count"] == 2 and entry["first_failed_at"] == first
    assert entry["error"] == "second" and entry["error_type"] == "NetworkError"
    assert entry["author"] is None and entry["source_dir"] is None
    assert ms.get_failed_identifiers() == {"B1"}


def test_clear_failed_says_whether_it_was_there(state_file):
    ms.mark_failed(release(asin="B1"), "e")
    assert ms.clear_failed("B1") is True
    assert ms.clear_failed("B1") is False
    assert not ms.is_failed("B1")


def test_checkpoint_stage_records_names_only_at_creation(state_file, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    ms.checkpoint_stage(
        release(asin="B1", title="First", author="A", staging_dir=staging, status=ms.ReleaseStatus.STAGED),
        "staged",
    )
    ms.checkpoint_stage(
        release(asin="B1", title="Second", status=ms.ReleaseStatus.TORRENT_CREATED),
        "torrent",
        infohash="deadbeef",
    )
    entry = ms.load_state()["processed"]["B1"]
    assert entry["title"] == "First" and entry["author"] == "A"
    assert entry["staging_dir"] == str(staging)  # kept: the release had none this time
    assert entry["status"] == "TORRENT_CREATED" and entry["infohash"] == "deadbeef"
    assert set(entry["checkpoints"]) == {"staged_at", "torrent_at"}
    assert ms.get_checkpoint("B1", "staged") == entry["checkpoints"]["staged_at"]
    assert ms.get_checkpoint("B1", "metadata") is None
    assert ms.get_checkpoint("NOPE", "staged") is None
    assert ms.get_infohash("B1") == "deadbeef" and ms.get_infohash("NOPE") is None


def test_should_skip_stage_checks_the_releases_own_paths(state_file, tmp_path):
    staging = tmp_path / "staging"
    staging.mkdir()
    write(
        state_file,
        {
            "version": 2,
            "failed": {},
            "processed": {
                "B1": {"checkpoints": {"staged_at": "2024-01-01T00:00:00", "torrent_at": "2024-01-01T00:00:00"},
                       "staging_dir": "/recorded/gone", "torrent_path": "/recorded/gone.torrent"},
            },
        },
    )
    # Done, and the release holds no path: skip (as the tool does), whatever is recorded.
    assert ms.should_skip_stage(release(asin="B1"), "staged") is True
    assert ms.should_skip_stage(release(asin="B1", staging_dir=staging), "staged") is True
    assert ms.should_skip_stage(release(asin="B1", staging_dir=tmp_path / "gone"), "staged") is False
    assert ms.should_skip_stage(release(asin="B1", torrent_path=tmp_path / "x.torrent"), "torrent") is False
    assert ms.should_skip_stage(release(asin="B1"), "metadata") is False
    assert ms.should_skip_stage(release(asin="NOPE"), "staged") is False


def test_stale_entries_are_found_and_pruned_in_one_write(state_file, tmp_path):
    write(
        state_file,
        {
            "version": 2,
            "failed": {},
            "processed": {
                "S1": {"status": "STAGED", "title": "gone", "staging_dir": str(tmp_path / "gone")},
                "S2": {"status": "STAGED", "title": "here", "staging_dir": str(tmp_path)},
                "C1": {"status": "COMPLETE", "staging_dir": str(tmp_path / "gone")},
            },
        },
    )
    assert ms.find_stale_entries() == [("S1", "gone", "STAGED", "staging_dir")]
    assert ms.prune_stale_entries(dry_run=True) == [("S1", "gone")]
    assert "S1" in ms.get_processed_identifiers()
    assert ms.prune_stale_entries() == [("S1", "gone")]
    assert ms.get_processed_identifiers() == {"S2", "C1"}
    assert ms.get_stats() == {"processed": 2, "failed": 0}


def test_ids_and_titles_starting_with_a_dash_and_non_ascii(state_file):
    rel = release(asin="-B1", title="--title 転生", author="-a Ünï", status=ms.ReleaseStatus.STAGED)
    ms.checkpoint_stage(rel, "staged")
    ms.mark_failed(release(asin="--force", title="-x"), "-error: ✗")
    entry = ms.load_state()["processed"]["-B1"]
    assert (entry["title"], entry["author"]) == ("--title 転生", "-a Ünï")
    failed = ms.load_state()["failed"]["--force"]
    assert (failed["error"], failed["title"]) == ("-error: ✗", "-x")
    assert ms.should_skip_stage(rel, "staged") is True
    assert ms.clear_failed("--force") is True


def test_corrupt_state_without_backup_raises(state_file):
    state_file.write_text("not valid json {{{")
    with pytest.raises(ms.StateCorruptionError) as err:
        ms.load_state()
    assert "no backup" in str(err.value).lower()
    # The corrupt bytes are kept, never overwritten.
    assert state_file.read_text() == "not valid json {{{"


def test_a_corrupt_main_file_is_recovered_from_its_backup(state_file):
    write(state_file.with_suffix(".json.bak"), {"version": 1, "processed": {"B": {}}, "failed": {}})
    state_file.write_text("{{{")
    assert "B" in ms.load_state()["processed"]


def test_validate_status_transition_follows_the_table():
    S = ms.ReleaseStatus
    assert ms.validate_status_transition(None, S.COMPLETE)
    assert ms.validate_status_transition("STAGED", "METADATA_FETCHED")
    assert ms.validate_status_transition(S.TORRENT_CREATED, S.COMPLETE)
    assert not ms.validate_status_transition(S.STAGED, S.COMPLETE)
    assert ms.validate_status_transition("WHATEVER", S.COMPLETE)
    with pytest.raises(ms.InvalidStatusTransitionError) as err:
        ms.validate_status_transition(S.COMPLETE, S.STAGED, identifier="B1", strict=True)
    assert "[B1]" in str(err.value) and err.value.current is S.COMPLETE


def test_run_lock_refuses_a_second_holder(state_file):
    with ms.run_lock():
        with pytest.raises(ms.StateLockError):
            with ms.run_lock():
                pass
        with ms.run_lock(force=True):
            pass


def test_a_held_state_lock_times_out_as_state_lock_error(state_file, monkeypatch):
    import fcntl

    monkeypatch.setenv("MAMFAST_LOCK_TIMEOUT", "1s")
    lock = open(str(state_file) + ".lock", "a+")
    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
    try:
        with pytest.raises(ms.StateLockError):
            ms.mark_failed(release(asin="B1"), "e")
    finally:
        lock.close()


WORKER = r"""
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import patch
sys.path.insert(0, sys.argv[1])
import mamfast_state as ms
settings = SimpleNamespace(paths=SimpleNamespace(state_file=Path(sys.argv[2])))
name, count = sys.argv[3], int(sys.argv[4])
with patch.object(ms, "get_settings", return_value=settings):
    for i in range(count):
        def add(state, i=i):
            state["processed"][f"{name}-{i}"] = {"title": name}
            state["counter"] = state.get("counter", 0) + 1
        ms.update_state(add)
"""


def test_update_state_under_contention_loses_no_update(state_file):
    count = 12
    module_dir = str(Path(ms.__file__).parent)
    workers = [
        subprocess.Popen([sys.executable, "-c", WORKER, module_dir, str(state_file), name, str(count)])
        for name in ("p1", "p2")
    ]
    # A mamfast writer at the same time.
    for _ in range(count):
        subprocess.run(
            [BIN, "--state-file", str(state_file), "-q", "state", "mark-failed", "F1", "--error", "e"],
            check=True,
        )
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    state = on_disk(state_file)
    assert state["counter"] == 2 * count
    assert {f"{n}-{i}" for n in ("p1", "p2") for i in range(count)} <= set(state["processed"])
    assert state["failed"]["F1"]["retry_count"] == count


def test_a_state_mamfast_cannot_use_is_refused_not_written(state_file):
    write(state_file, {"version": 2, "processed": {"B1": {}}, "failed": {}})
    before = state_file.read_bytes()
    with pytest.raises(ms.MamfastError) as err:
        ms.save_state({"version": 2, "processed": [], "failed": {}})
    assert err.value.exit_code == 65
    with pytest.raises(ms.MamfastError):
        ms.update_state(lambda s: s.__setitem__("version", 99))
    assert state_file.read_bytes() == before


def test_an_unknown_stage_is_refused_before_anything_is_written(state_file):
    with pytest.raises(ValueError):
        ms.checkpoint_stage(release(asin="B1"), "packed")
    assert ms.should_skip_stage(release(asin="B1"), "packed") is False
    assert not state_file.exists()
