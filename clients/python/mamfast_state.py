"""
The pipeline's state API (``utils/state.py`` of the Python tool) on top of the ``mamfast`` CLI.

Same public names, signatures, return values and exceptions as the tool's own module, so that
copying this file over ``utils/state.py`` is the whole switch. Every change goes through
``mamfast``: one command (``mark-processed``, ``mark-failed``, ``checkpoint``, ``retry``,
``clear``) or, for ``update_state(fn)``, an optimistic transaction (``state export
--token-file`` then ``state import --if-token``, retried when another writer came in between).
The state file is never written here, so mamfast's guarantees hold for the pipeline's writes
too: the shared lock with a bounded wait, backup generations, durable writes, a corrupt file
kept rather than overwritten.

Where the state file is: ``get_settings().paths.state_file``, a module-level function as in
the tool (tests that patch it keep working): the tool's own settings when this file sits in the
tool's package, else mamfast's configuration (``mamfast config show --json``).
Which mamfast: ``$MAMFAST_BIN``, else ``mamfast`` on ``PATH``.

The README beside this file lists every behaviour that differs from the tool's module, and why.
Standard library only.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Generator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

logger = logging.getLogger(__name__)

CURRENT_SCHEMA_VERSION = 2

# mamfast's exit codes (its README, "Exit codes").
_EXIT_SKIP_RUN = 1
_EXIT_NOT_FOUND = 3  # should-skip: the ID is not in processed (so the stage must run)
_EXIT_CONFLICT = 4
_EXIT_DATA = 65
_EXIT_LOCK = 75

# How often update_state re-reads and retries when another writer came in between.
UPDATE_ATTEMPTS = 100

# ---------------------------------------------------------------------------------------------
# What the tool provides when this file is its utils/state.py; stand-ins otherwise.
# ---------------------------------------------------------------------------------------------

try:  # the tool's own settings, exceptions and models (this file copied into its package)
    from ..config import get_settings  # type: ignore[import-not-found,no-redef]
except (ImportError, ValueError):  # standalone: mamfast's configuration

    def get_settings() -> Any:  # type: ignore[misc]
        """Settings with ``.paths.state_file``: mamfast's ``state.file``."""
        return SimpleNamespace(paths=SimpleNamespace(state_file=_mamfast_state_file()))


try:
    from ..exceptions import (  # type: ignore[import-not-found,no-redef]
        StateCorruptionError,
        StateLockError,
    )
except (ImportError, ValueError):

    class StateCorruptionError(Exception):  # type: ignore[no-redef]
        """The state file and its backups are corrupt."""

    class StateLockError(Exception):  # type: ignore[no-redef]
        """The lock could not be had."""

        def __init__(self, message: str, lock_file: Path | None = None) -> None:
            super().__init__(message)
            self.lock_file = lock_file


try:
    from ..models import AudiobookRelease, ReleaseStatus  # type: ignore[import-not-found]
except (ImportError, ValueError):
    AudiobookRelease = Any  # type: ignore[misc,assignment]

    class ReleaseStatus(enum.Enum):  # type: ignore[no-redef]
        """The statuses of the tool's ``ReleaseStatus``, by name."""

        DISCOVERED = "discovered"
        STAGED = "staged"
        METADATA_FETCHED = "metadata_fetched"
        TORRENT_CREATED = "torrent_created"
        UPLOADED = "uploaded"
        COMPLETE = "complete"
        FAILED = "failed"


class MamfastError(RuntimeError):
    """mamfast refused or failed; ``exit_code`` and ``stderr`` say how."""

    def __init__(self, message: str, exit_code: int, stderr: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr


class _Conflict(Exception):
    """The state changed between the read and the import of a transaction."""


# ---------------------------------------------------------------------------------------------
# Running mamfast
# ---------------------------------------------------------------------------------------------


def _mamfast_bin() -> str:
    found = os.environ.get("MAMFAST_BIN") or shutil.which("mamfast")
    if not found:
        raise MamfastError(
            "mamfast not found: set MAMFAST_BIN to its path or put it on PATH", 127, ""
        )
    return found


def _mamfast_state_file() -> Path:
    out = subprocess.run(
        [_mamfast_bin(), "config", "show", "--json"],
        capture_output=True,
        check=False,
    )
    if out.returncode != 0:
        raise MamfastError(
            f"mamfast config show failed: {out.stderr.decode(errors='replace').strip()}",
            out.returncode,
            out.stderr.decode(errors="replace"),
        )
    return Path(json.loads(out.stdout)["state.file"])


def _get_state_file() -> Path:
    """Get the configured state file path."""
    return Path(get_settings().paths.state_file)


def _get_run_lock_file() -> Path:
    """Get the run lock file path (next to state file)."""
    return _get_state_file().parent / "mamfast.lock"


def _mamfast(
    args: list[str], *, stdin: bytes | None = None, ok: tuple[int, ...] = (0,)
) -> subprocess.CompletedProcess[bytes]:
    """Runs ``mamfast --state-file FILE ARGS``; an exit code outside ``ok`` is raised."""
    state_file = _get_state_file()
    out = subprocess.run(
        [_mamfast_bin(), "--state-file", str(state_file), *args],
        input=stdin,
        capture_output=True,
        check=False,
    )
    stderr = out.stderr.decode("utf-8", errors="replace")
    for line in stderr.splitlines():
        if line.startswith("warning: "):
            logger.info("mamfast: %s", line[len("warning: ") :])
    if out.returncode in ok:
        return out
    raise _error(out.returncode, stderr, state_file)


def _error(code: int, stderr: str, state_file: Path) -> Exception:
    message = stderr.strip().removeprefix("error: ")
    if code == _EXIT_CONFLICT:
        return _Conflict(message)
    if code == _EXIT_LOCK:
        return StateLockError(message, lock_file=state_file.with_suffix(state_file.suffix + ".lock"))
    # A load that found the file and every backup corrupt (an import refusing its input is not).
    if code == _EXIT_DATA and "corrupt" in message and "mamfast can import" not in message:
        backup = state_file.with_suffix(".json.bak")
        what = (
            "State file corrupt and backup also corrupt."
            if backup.exists()
            else "State file corrupt and no backup found."
        )
        return StateCorruptionError(
            f"{what}\n\n{message}\n\n"
            f"Recovery options:\n"
            f"1. See the generations mamfast keeps: mamfast --state-file '{state_file}' state backups\n"
            f"2. Restore one: mamfast --state-file '{state_file}' state restore N\n"
            f"3. To start fresh, move the files aside (rather than rm them):\n"
            f"   mv '{state_file}' '{state_file}.old'\n\n"
            f"WARNING: Starting fresh will lose all processed/failed state!"
        )
    return MamfastError(f"mamfast failed (exit {code}): {message}", code, stderr)


def _opt(name: str, value: object) -> list[str]:
    """``--name=VALUE`` (a value starting with ``-`` stays a value), or ``--unset=NAME`` for
    ``None``: the tool writes ``None`` for what a release does not have."""
    if value is None:
        return [f"--unset={name.replace('-', '_')}"]
    return [f"--{name}={value}"]


def _path_or_none(value: object) -> str | None:
    return str(value) if value else None


def _identifier(release: Any) -> str | None:
    return release.asin or (str(release.source_dir) if release.source_dir else None)


def _status_name(release: Any) -> str:
    status = release.status
    return status.name if hasattr(status, "name") else str(status)


# ---------------------------------------------------------------------------------------------
# Locks
# ---------------------------------------------------------------------------------------------


@contextmanager
def run_lock(force: bool = False) -> Generator[None, None, None]:
    """
    Global run lock to prevent concurrent pipeline instances (``mamfast.lock`` beside the
    state file, taken without waiting). ``force=True`` skips it (dangerous).

    Raises:
        StateLockError: another instance is already running
    """
    if force:
        logger.warning("Run lock bypassed with --no-run-lock (DANGEROUS!)")
        yield
        return

    lock_file = _get_run_lock_file()
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_file, "a+") as lockf:
        try:
            fcntl.flock(lockf.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise StateLockError(
                f"Another MAMFast instance is already running.\n"
                f"Lock file: {lock_file}\n\n"
                f"If you're sure no other instance is running, delete the lock file:\n"
                f"  rm {lock_file}\n\n"
                f"Or use --no-run-lock to bypass (DANGEROUS - can cause data corruption)",
                lock_file=lock_file,
            ) from e
        try:
            yield
        finally:
            with contextlib.suppress(Exception):
                fcntl.flock(lockf.fileno(), fcntl.LOCK_UN)


# ---------------------------------------------------------------------------------------------
# Whole state: read, replace, read-modify-write
# ---------------------------------------------------------------------------------------------


def _export() -> tuple[dict[str, Any], str]:
    """The whole state and its version token, read in one call."""
    fd, token_path = tempfile.mkstemp(prefix="mamfast-token-")
    os.close(fd)
    try:
        out = _mamfast(["state", "export", f"--token-file={token_path}"])
        token = Path(token_path).read_text(encoding="utf-8").strip()
    finally:
        with contextlib.suppress(OSError):
            os.unlink(token_path)
    state: dict[str, Any] = json.loads(out.stdout.decode("utf-8"))
    return state, token


def _import(state: dict[str, Any], token: str | None) -> None:
    """Replaces the whole state through mamfast: only if its token is still ``token``
    (``_Conflict`` otherwise), or whatever it is with ``token=None``."""
    data = json.dumps(state, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")
    check = [f"--if-token={token}"] if token is not None else ["--force"]
    _mamfast(["-q", "state", "import", *check, "-"], stdin=data)


def load_state() -> dict[str, Any]:
    """
    Load the state (migrated to the current schema). A missing file is an empty state; a
    corrupt one is recovered by mamfast from its newest valid backup.

    Raises:
        StateCorruptionError: the file and every backup are corrupt
    """
    return _export()[0]


def save_state(state: dict[str, Any]) -> None:
    """
    Replace the whole state (under mamfast's lock, backed up, durably).

    DEPRECATED: Prefer update_state() for modifications to ensure
    proper read-modify-write atomicity.
    """
    _import(state, None)


def update_state(fn: Callable[[dict[str, Any]], None]) -> None:
    """
    Read-modify-write: ``fn`` changes the state dict in place, and the result replaces the
    state only if no other writer changed it meanwhile; otherwise the state is read again and
    ``fn`` runs again on it (so ``fn`` must depend only on the state it is given). No update is
    ever lost, and no lock is held while ``fn`` runs.
    """
    for attempt in range(UPDATE_ATTEMPTS):
        state, token = _export()
        fn(state)
        try:
            _import(state, token)
            return
        except _Conflict:
            logger.debug("State changed while updating (attempt %d); retrying", attempt + 1)
            time.sleep(min(0.001 * (attempt + 1), 0.05))
    raise StateLockError(
        f"State kept changing: update not applied after {UPDATE_ATTEMPTS} attempts",
        lock_file=_get_state_file(),
    )


# ---------------------------------------------------------------------------------------------
# Queries
# ---------------------------------------------------------------------------------------------


def is_processed(identifier: str) -> bool:
    """Check if a release has been processed (ASIN or path-based identifier)."""
    return identifier in load_state().get("processed", {})


def is_failed(identifier: str) -> bool:
    """Check if a release has previously failed."""
    return identifier in load_state().get("failed", {})


def get_processed_identifiers() -> set[str]:
    """Get all processed identifiers (ASINs and paths)."""
    return set(load_state().get("processed", {}).keys())


def get_failed_identifiers() -> set[str]:
    """Get all failed identifiers."""
    return set(load_state().get("failed", {}).keys())


def get_stats() -> dict[str, int]:
    """Get count statistics from state."""
    state = load_state()
    return {
        "processed": len(state.get("processed", {})),
        "failed": len(state.get("failed", {})),
    }


def get_checkpoint(identifier: str, stage: str) -> str | None:
    """The timestamp of a completed stage, or None if not completed."""
    entry = load_state().get("processed", {}).get(identifier)
    if not entry:
        return None
    result: str | None = (entry.get("checkpoints") or {}).get(f"{stage}_at")
    return result


def get_infohash(identifier: str) -> str | None:
    """The stored infohash for a release, if any."""
    entry = load_state().get("processed", {}).get(identifier)
    if not entry:
        return None
    result: str | None = entry.get("infohash")
    return result


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


def mark_processed(release: AudiobookRelease, infohash: str | None = None) -> None:
    """
    Record a release as processed (its status, names, paths and infohash, ``uploaded_at``),
    and remove it from failed. Uses the ASIN as identifier, else the source directory.
    """
    identifier = _identifier(release)
    if not identifier:
        logger.warning("Cannot mark release processed: no identifier (missing ASIN and source_dir)")
        return
    _mamfast(
        [
            "-q",
            "state",
            "mark-processed",
            "--force",
            f"--status={_status_name(release)}",
            *_opt("asin", release.asin),
            *_opt("title", release.title),
            *_opt("author", release.author),
            *_opt("staging-dir", _path_or_none(release.staging_dir)),
            *_opt("torrent-path", _path_or_none(release.torrent_path)),
            *_opt("infohash", infohash),
            "--",
            identifier,
        ]
    )
    logger.info(f"Marked as processed: {getattr(release, 'display_name', identifier)}")


def mark_failed(
    release: AudiobookRelease,
    error: str,
    *,
    error_type: str | None = None,
) -> None:
    """
    Record a failure: ``retry_count`` + 1, ``first_failed_at`` kept, ``failed_at``, ``error``
    and ``error_type`` replaced.
    """
    identifier = _identifier(release)
    if not identifier:
        logger.warning("Cannot mark release failed: no identifier (missing ASIN and source_dir)")
        return
    args = ["-q", "state", "mark-failed", f"--error={error}"]
    if error_type:
        args.append(f"--error-type={error_type}")
    args += [
        *_opt("asin", release.asin),
        *_opt("title", release.title),
        *_opt("author", release.author),
        *_opt("source-dir", _path_or_none(release.source_dir)),
        "--",
        identifier,
    ]
    _mamfast(args)
    logger.warning(f"Marked as failed: {getattr(release, 'display_name', identifier)} - {error}")


def clear_failed(identifier: str) -> bool:
    """Remove a release from failed so it is retried. True if it was there."""
    out = _mamfast(["state", "retry", "--json", "--", identifier])
    report = json.loads(out.stdout)
    removed = any(item["found"] for item in report["ids"])
    if removed:
        logger.info(f"Cleared failed state for: {identifier}")
    return removed


_STAGES = ("staged", "metadata", "torrent", "uploaded")


def checkpoint_stage(
    release: AudiobookRelease,
    stage: str,
    *,
    infohash: str | None = None,
) -> None:
    """
    Record that a pipeline stage finished ("staged", "metadata", "torrent", "uploaded"), with
    the release's status, its paths when it has them and ``infohash`` when given. Names
    (asin, title, author) are recorded only when the entry is created.
    """
    identifier = _identifier(release)
    if not identifier:
        logger.warning(f"Cannot checkpoint {stage}: no identifier (missing ASIN and source_dir)")
        return
    if stage not in _STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(_STAGES)}")
    args = [
        "-q",
        "state",
        "checkpoint",
        "--force",
        "--names-if-new",
        f"--status={_status_name(release)}",
        *_opt("asin", release.asin),
        *_opt("title", release.title),
        *_opt("author", release.author),
    ]
    # Paths and the infohash replace the stored ones only when the release has them.
    if release.staging_dir:
        args.append(f"--staging-dir={release.staging_dir}")
    if release.torrent_path:
        args.append(f"--torrent-path={release.torrent_path}")
    if infohash:
        args.append(f"--infohash={infohash}")
    _mamfast([*args, "--", identifier, stage])
    logger.debug(f"Checkpointed {stage} for {getattr(release, 'display_name', identifier)}")


def should_skip_stage(release: AudiobookRelease, stage: str) -> bool:
    """
    Whether a stage was completed and may be skipped: its checkpoint exists and the release's
    own artifact (its staging directory for "staged", its torrent file for "torrent") still
    exists, when the release has one.
    """
    identifier = _identifier(release)
    if not identifier or stage not in _STAGES:
        return False
    # The release's paths are checked, as the tool checks them; "" names none (nothing to check).
    staging = str(release.staging_dir) if stage == "staged" and release.staging_dir else ""
    torrent = str(release.torrent_path) if stage == "torrent" and release.torrent_path else ""
    out = _mamfast(
        [
            "state",
            "should-skip",
            f"--staging-dir={staging}",
            f"--torrent-path={torrent}",
            "--",
            identifier,
            stage,
        ],
        ok=(0, _EXIT_SKIP_RUN, _EXIT_NOT_FOUND),
    )
    return out.returncode == 0


# ---------------------------------------------------------------------------------------------
# Stale entries
# ---------------------------------------------------------------------------------------------

# Path requirements vary by status - after completion, paths may legitimately disappear
REQUIRED_PATHS_BY_STATUS: dict[str, list[str]] = {
    "DISCOVERED": [],
    "STAGED": ["staging_dir"],
    "METADATA_FETCHED": ["staging_dir"],
    "TORRENT_CREATED": ["staging_dir", "torrent_path"],
    "UPLOADED": ["torrent_path"],
    "COMPLETE": [],
    "FAILED": [],
}


def find_stale_entries() -> list[tuple[str, str, str, str]]:
    """
    Processed entries whose status needs a path that is gone: one
    ``(identifier, title, status, missing_path_key)`` per missing path.
    """
    stale: list[tuple[str, str, str, str]] = []
    for identifier, entry in load_state().get("processed", {}).items():
        status = entry.get("status", "COMPLETE")
        title = entry.get("title", "Unknown")
        for path_key in REQUIRED_PATHS_BY_STATUS.get(status, []):
            path_str = entry.get(path_key)
            if path_str and not Path(path_str).exists():
                stale.append((identifier, title, status, path_key))
    return stale


def prune_stale_entries(*, dry_run: bool = False) -> list[tuple[str, str]]:
    """
    Remove stale entries from processed (one mamfast call, one write). The
    ``(identifier, title)`` pairs removed (or, with ``dry_run``, that would be).
    """
    to_remove: dict[str, str] = {}
    for identifier, title, _status, _missing in find_stale_entries():
        to_remove.setdefault(identifier, title)
    if not to_remove or dry_run:
        return list(to_remove.items())
    _mamfast(["-q", "state", "clear", "--", *to_remove])
    for identifier in to_remove:
        logger.info(f"Pruned stale entry: {identifier}")
    return list(to_remove.items())


# ---------------------------------------------------------------------------------------------
# Status transitions (pure: the same table as mamfast's)
# ---------------------------------------------------------------------------------------------

ALLOWED_TRANSITIONS: dict[Any, set[Any]] = {
    ReleaseStatus.DISCOVERED: {ReleaseStatus.DISCOVERED, ReleaseStatus.STAGED},
    ReleaseStatus.STAGED: {ReleaseStatus.STAGED, ReleaseStatus.METADATA_FETCHED},
    ReleaseStatus.METADATA_FETCHED: {
        ReleaseStatus.METADATA_FETCHED,
        ReleaseStatus.TORRENT_CREATED,
    },
    ReleaseStatus.TORRENT_CREATED: {
        ReleaseStatus.TORRENT_CREATED,
        ReleaseStatus.UPLOADED,
        ReleaseStatus.COMPLETE,
    },
    ReleaseStatus.UPLOADED: {ReleaseStatus.UPLOADED, ReleaseStatus.COMPLETE},
    ReleaseStatus.COMPLETE: {ReleaseStatus.COMPLETE},
    ReleaseStatus.FAILED: {ReleaseStatus.FAILED, ReleaseStatus.DISCOVERED},
}


class InvalidStatusTransitionError(Exception):
    """Raised when an invalid status transition is attempted."""

    def __init__(self, current: Any, new: Any, identifier: str | None = None) -> None:
        allowed = ALLOWED_TRANSITIONS.get(current, set())
        allowed_names = ", ".join(s.name for s in allowed) if allowed else "none"
        msg = (
            f"Invalid status transition: {current.name} → {new.name}\n"
            f"Allowed transitions from {current.name}: {allowed_names}"
        )
        if identifier:
            msg = f"[{identifier}] {msg}"
        super().__init__(msg)
        self.current = current
        self.new = new
        self.identifier = identifier


def validate_status_transition(
    current: Any,
    new: Any,
    *,
    identifier: str | None = None,
    strict: bool = False,
) -> bool:
    """
    Whether ``current -> new`` is allowed (``current`` None: a new entry, anything goes; an
    unknown status never blocks). With ``strict``, an invalid one raises
    InvalidStatusTransitionError; otherwise it is logged and False returned.
    """
    if isinstance(new, str):
        try:
            new = ReleaseStatus[new]
        except KeyError:
            logger.warning(f"Unknown status: {new}")
            return True
    if current is None:
        return True
    if isinstance(current, str):
        try:
            current = ReleaseStatus[current]
        except KeyError:
            logger.warning(f"Unknown current status: {current}")
            return True
    allowed = ALLOWED_TRANSITIONS.get(current, set())
    if new in allowed:
        return True
    if strict:
        raise InvalidStatusTransitionError(current, new, identifier)
    logger.warning(
        f"Invalid status transition: {current.name} → {new.name} "
        f"(allowed: {', '.join(s.name for s in allowed)})"
    )
    return False
