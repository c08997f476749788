"""Checkpoints of the chain's head, kept outside the database and signed with a key it does not hold.

A checkpoint says "at this time the chain held ``count`` rows and ended at row ``head_id`` with hash
``head_hash``", with an HMAC-SHA256 over those values under ``AUDIT_ANCHOR_KEY``. They are appended,
one JSON line each, to ``AUDIT_ANCHOR_DIR/<database name>.jsonl``. Whoever holds the database but
not the key cannot write a checkpoint that verifies, so a chain rewritten and re-hashed behind a
checkpoint, or cut short below one, no longer matches it (README "What the audit proves").

Keys are a list, newest first: the newest signs, every one verifies (key rotation, README). A line
names its key by an id derived from the key, which tells nothing about the key itself.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections

from backoffice.audit.chain import canonical_json
from backoffice.audit.models import AUDIT_DB

SIGNED_FIELDS: tuple[str, ...] = ("head_id", "head_hash", "count", "at", "key_id")


def key_id(key: str) -> str:
    return hmac.new(key.encode(), b"audit-anchor key id", hashlib.sha256).hexdigest()[:16]


def _mac(key: str, values: dict[str, Any]) -> str:
    payload = canonical_json({name: values[name] for name in SIGNED_FIELDS})
    return hmac.new(key.encode(), payload.encode("ascii"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Checkpoint:
    head_id: int
    head_hash: str
    count: int
    at: str  # ISO 8601, UTC
    key_id: str
    hmac: str
    line: int = field(default=0, compare=False)  # where it stands in the file (not signed)

    def describe(self) -> str:
        return f"the checkpoint of {self.at} (line {self.line} of {anchor_path()})"


def anchor_path() -> Path:
    directory: Path = settings.AUDIT_ANCHOR_DIR
    return directory / f"{connections[AUDIT_DB].settings_dict['NAME']}.jsonl"


def sign(*, head_id: int, head_hash: str, count: int, at: datetime) -> Checkpoint:
    key = settings.AUDIT_ANCHOR_KEYS[0]
    values: dict[str, Any] = {
        "head_id": head_id,
        "head_hash": head_hash,
        "count": count,
        "at": at.isoformat(),
        "key_id": key_id(key),
    }
    return Checkpoint(**values, hmac=_mac(key, values))


def append(checkpoint: Checkpoint) -> None:
    """Append one line, whole (under a lock, one write), and on disk before returning."""
    path = anchor_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {name: value for name, value in asdict(checkpoint).items() if name != "line"}
    data = (json.dumps(record, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Anchors:
    """What the anchor file says: the checkpoints that verify, in file order, and the first reason
    it cannot be trusted (a line altered, unreadable, or signed by an unknown or retired key)."""

    checkpoints: tuple[Checkpoint, ...]
    failure: str = ""

    @property
    def latest(self) -> Checkpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None


def read() -> Anchors:
    path = anchor_path()
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return Anchors(())
    keys = {key_id(key): key for key in settings.AUDIT_ANCHOR_KEYS}
    current = key_id(settings.AUDIT_ANCHOR_KEYS[0])
    checkpoints: list[Checkpoint] = []
    signed_by_current = 0  # the line where the current key first signed
    unknown: Checkpoint | None = None
    for number, text in enumerate(lines, 1):
        try:
            record = json.loads(text)
            checkpoint = Checkpoint(**{name: record[name] for name in (*SIGNED_FIELDS, "hmac")}, line=number)
        except (ValueError, KeyError, TypeError):
            return Anchors(tuple(checkpoints), f"line {number} of {path} is not a checkpoint")
        key = keys.get(checkpoint.key_id)
        if key is None:
            unknown = checkpoint  # a retired key's line: tolerated unless it is the newest
            continue
        if not hmac.compare_digest(_mac(key, record), checkpoint.hmac):
            return Anchors(
                tuple(checkpoints),
                f"line {number} of {path} does not verify under its key {checkpoint.key_id}: the anchor "
                "file was altered",
            )
        if checkpoint.key_id == current:
            signed_by_current = signed_by_current or number
        elif signed_by_current:
            return Anchors(
                tuple(checkpoints),
                f"line {number} of {path} is signed by an earlier key ({checkpoint.key_id}) after line "
                f"{signed_by_current} was signed by the current one: a retired key was used to forge it",
            )
        checkpoints.append(checkpoint)
    if unknown is not None and (not checkpoints or unknown.line > checkpoints[-1].line):
        return Anchors(
            tuple(checkpoints),
            f"the newest checkpoint (line {unknown.line} of {path}) is signed by key {unknown.key_id}, "
            "which is not among AUDIT_ANCHOR_KEY's keys",
        )
    return Anchors(tuple(checkpoints))
