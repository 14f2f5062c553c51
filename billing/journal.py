"""
Settlements the database could not take, kept until it can.

When the database stays unreachable through a settlement's retries, the
settlement is appended to this process's journal on local disk (one JSON
line, fsync'd, in SWITCHBOARD_JOURNAL_DIR) and the client still gets its
answer. Every live serving process replays every journal in the directory,
its own and those of processes that died, on its heartbeat
(billing.workers); `manage.py settlements_replay` does it by hand. A replay
settles each entry with billing.settlement.usage_settle, which is idempotent
by request id: an entry replayed twice (a replay killed halfway) is charged
once, so every journaled settlement is applied exactly once.

Why a local file and not Redis: the journal is needed exactly when a
dependency fails, and Redis may be the one that did, or go with it. The
local disk is what fails least, costs no round trip and outlives the
process. Its limit: the journal lives on its host, so production keeps the
directory on a persistent volume.

Files: `<worker>.jsonl` is appended to by its process only. A replay first
claims a file by renaming it to `<worker>.<random>.claimed` under the
writer's lock (a writer that opened the old name notices and reopens), so
writing never waits for a replay; a claimed file left by a replayer that
died is claimed again after a minute.
"""

import contextlib
import fcntl
import logging
import os
import secrets
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import orjson
from django.apps import apps
from django.conf import settings

from config.db import CONNECTION_ERRORS

logger = logging.getLogger(__name__)

STALE_CLAIM_SECONDS = 60
# Entries a replay could not settle for a reason other than the database
# being away: kept for an operator, never replayed by themselves.
UNSETTLED = "unsettled.txt"


def directory() -> Path:
    return Path(settings.SWITCHBOARD_JOURNAL_DIR)


def _default(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot journal {type(value).__name__}")


def entry_of(record, description: str, promo_ok: bool) -> bytes:
    """One journal line: everything usage_settle needs to settle `record`."""
    fields = {
        field.attname: getattr(record, field.attname)
        for field in record._meta.concrete_fields
        if not field.primary_key
    }
    entry = {
        "model": record._meta.label,
        "record": fields,
        "description": description,
        "promo_ok": promo_ok,
    }
    return orjson.dumps(entry, default=_default) + b"\n"


def record_of(entry: dict):
    """The unsaved usage record a journal entry describes."""
    model = apps.get_model(entry["model"])
    by_attname = {f.attname: f for f in model._meta.concrete_fields}
    return model(
        **{
            attname: by_attname[attname].to_python(value)
            for attname, value in entry["record"].items()
        }
    )


def append(line: bytes, *, owner: str) -> None:
    """Append one entry to `owner`'s journal and make it durable."""
    folder = directory()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_safe(owner)}.jsonl"
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino
            except FileNotFoundError:
                current = None
            if current != os.fstat(fd).st_ino:
                continue  # a replay claimed the file meanwhile: write a new one
            os.write(fd, line)
            os.fsync(fd)
            return
        finally:
            os.close(fd)


def pending() -> bool:
    """Whether any journal waits for a replay (a directory listing)."""
    try:
        with os.scandir(directory()) as found:
            return any(e.name.endswith((".jsonl", ".claimed")) for e in found)
    except FileNotFoundError:
        return False


def depth() -> int:
    """How many settlements wait in the journals."""
    if not pending():
        return 0
    total = 0
    for path in directory().iterdir():
        if path.name.endswith((".jsonl", ".claimed")):
            with contextlib.suppress(FileNotFoundError):
                total += path.read_bytes().count(b"\n")
    return total


def replay() -> int:
    """
    Settle every journaled entry; return how many were settled. While the
    database is still away, the entry and those after it go back to the
    journal and the connection error is raised (so the caller replaces the
    connection). An entry the database refuses for another reason is kept
    aside in UNSETTLED for an operator (billing_audit reports it).
    """
    from billing.settlement import usage_settle  # settlement journals here

    settled = 0
    for claimed in _claims():
        try:
            lines = claimed.read_bytes().splitlines()
        except FileNotFoundError:
            continue  # claimed again by another replayer
        for index, line in enumerate(lines):
            try:
                entry = orjson.loads(line)
                record = record_of(entry)
            except (ValueError, KeyError, LookupError, TypeError):
                logger.error("unreadable journal entry kept aside: %r", line[:200])
                _keep_aside(line)
                continue
            try:
                usage_settle(
                    record=record,
                    description=entry["description"],
                    promo_ok=entry["promo_ok"],
                )
            except CONNECTION_ERRORS:
                for rest in lines[index:]:
                    append(rest + b"\n", owner=claimed.name.split(".")[0])
                claimed.unlink(missing_ok=True)
                raise
            except Exception:
                logger.exception("journaled settlement kept aside: %r", line[:200])
                _keep_aside(line)
                continue
            settled += 1
        claimed.unlink(missing_ok=True)
    if settled:
        logger.warning("replayed %d journaled settlements", settled)
    return settled


def unsettled() -> int:
    """How many journaled settlements were kept aside, unsettled."""
    try:
        return (directory() / UNSETTLED).read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def _claims():
    """Claim the journal files one at a time, each as it is reached, so that
    a replay stopped by the database leaves the others for the next."""
    folder = directory()
    if not folder.exists():
        return
    for path in sorted(folder.iterdir()):
        if path.name.endswith(".jsonl"):
            target = _claim(path, locked=True)
        elif path.name.endswith(".claimed") and _stale(path):
            target = _claim(path, locked=False)
        else:
            continue
        if target is not None:
            yield target


def _claim(path: Path, *, locked: bool) -> Path | None:
    stem = path.name.split(".")[0]
    target = path.with_name(f"{stem}.{secrets.token_hex(6)}.claimed")
    try:
        if not locked:
            path.rename(target)
            return target
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None  # another replayer took it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        path.rename(target)
    except FileNotFoundError:
        return None
    finally:
        os.close(fd)
    return target


def _stale(path: Path) -> bool:
    try:
        return time.time() - path.stat().st_mtime > STALE_CLAIM_SECONDS
    except FileNotFoundError:
        return False


def _keep_aside(line: bytes) -> None:
    with open(directory() / UNSETTLED, "ab") as kept:
        kept.write(line + b"\n")
        kept.flush()
        os.fsync(kept.fileno())


def _safe(owner: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in owner)
