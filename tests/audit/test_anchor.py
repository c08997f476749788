"""The chain anchored outside the database: checkpoints under a key the database does not hold, and
what verify_audit finds when someone holding the database as its owner rewrites, cuts or forks it."""

from __future__ import annotations

import hashlib
import hmac
import io
import json
from datetime import datetime
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from backoffice.audit import anchor, services, tasks
from backoffice.audit.chain import CONTENT_FIELDS, row_hash
from backoffice.audit.models import AuditEntry, ChainVerification
from tests.audit.conftest import AUDIT_DBS, Tamper, call

KEY_A = "anchor-key-a-0123456789abcdef0123456789abcdef"
KEY_B = "anchor-key-b-0123456789abcdef0123456789abcdef"
KEY_C = "anchor-key-c-0123456789abcdef0123456789abcdef"

pytestmark = pytest.mark.django_db(transaction=True, databases=AUDIT_DBS)


@pytest.fixture(autouse=True)
def anchors(settings, tmp_path: Path) -> Path:
    """A place and a key of the test's own: the run's anchor file stays as the other tests expect it."""
    settings.AUDIT_ANCHOR_DIR = tmp_path
    settings.AUDIT_ANCHOR_KEYS = [KEY_A]
    return tmp_path


def lines() -> list[dict]:
    return [json.loads(line) for line in anchor.anchor_path().read_text().splitlines()]


def failure() -> str:
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit", stdout=io.StringIO())
    return str(failed.value)


def test_a_checkpoint_records_head_count_time_and_an_hmac_the_database_cannot_make() -> None:
    call()
    head = call()
    checkpoint = tasks.checkpoint_chain()
    assert checkpoint == {"head_id": head.pk, "count": head.pk}  # ids run from 1 without a gap
    (line,) = lines()
    assert (line["head_id"], line["head_hash"], line["count"]) == (head.pk, head.hash, head.pk)
    assert abs((datetime.fromisoformat(line["at"]) - head.occurred_at).total_seconds()) < 60
    signed = json.dumps(
        {k: line[k] for k in ("at", "count", "head_hash", "head_id", "key_id")}, separators=(",", ":")
    )
    assert line["hmac"] == hmac.new(KEY_A.encode(), signed.encode(), hashlib.sha256).hexdigest()
    assert line["key_id"] == anchor.key_id(KEY_A) and KEY_A not in anchor.anchor_path().read_text()

    assert services.checkpoint_chain() is None  # nothing new: nothing written
    assert len(lines()) == 1
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().strip() == (
        f"OK: {head.pk} rows verified; rows up to id={head.pk} match the checkpoint of {line['at']} "
        f"(line 1 of {anchor.anchor_path()})"
    )


def test_verify_says_when_nothing_is_anchored_yet() -> None:
    call()
    assert services.verify_chain().message.endswith(
        f"; not anchored yet (no checkpoint in {anchor.anchor_path()})"
    )


def _recompute_from(tamper: Tamper, first_id: int) -> None:
    """Re-hash every row from ``first_id`` with the project's own hash function, as an owner would
    after rewriting one: the chain is whole again inside the database."""
    prev = AuditEntry.objects.filter(id=first_id).values_list("prev_hash", flat=True).get()
    for row in AuditEntry.objects.filter(id__gte=first_id).order_by("id").values("id", *CONTENT_FIELDS):
        new_hash = row_hash(prev, row)
        tamper.sql(
            "UPDATE audit_entry SET prev_hash = %s, hash = %s WHERE id = %s", [prev, new_hash, row["id"]]
        )
        prev = new_hash


def test_a_middle_row_rewritten_with_every_later_hash_recomputed_is_caught(tamper: Tamper) -> None:
    before = call()
    services.checkpoint_chain()
    target = call(response_body={"data": [{"status": "REJECTED"}]})
    call()
    head = call()
    services.checkpoint_chain()
    tamper.sql(
        "UPDATE audit_entry SET response_body = %s::jsonb WHERE id = %s",
        [json.dumps({"data": [{"status": "ACCEPTED"}]}), target.pk],
    )
    _recompute_from(tamper, target.pk)
    assert services._walk().ok  # inside the database, nothing shows

    message = failure()
    assert message.startswith(
        f"FAILED: row id={head.pk} does not match the checkpoint of {lines()[1]['at']} (line 2 of "
        f"{anchor.anchor_path()}): anchored {head.hash}, stored "
    )
    # The earlier checkpoint still matches, which brackets the rewritten row.
    assert (
        f"a row from id={before.pk + 1} to id={head.pk} was rewritten and the hashes after it recomputed"
        in message
    )
    assert f"still matches row id={before.pk}" in message
    assert ChainVerification.objects.latest().first_bad_id == target.pk == before.pk + 1

    # Nor is the rewritten chain anchored: the checkpoint refuses, and the failure is on the record.
    call()
    with pytest.raises(services.ChainBroken, match=f"row id={head.pk} does not match"):
        services.checkpoint_chain()
    assert len(lines()) == 2
    assert ChainVerification.objects.latest().ok is False


def test_the_newest_rows_deleted_are_caught(tamper: Tamper) -> None:
    kept = call()
    call(), call()
    head = call()
    services.checkpoint_chain()
    tamper.sql("DELETE FROM audit_entry WHERE id > %s", [kept.pk])
    assert services._walk().ok  # what is left still links

    assert failure().startswith(
        f"FAILED: rows id={kept.pk + 1} to id={head.pk} are missing: the checkpoint of {lines()[0]['at']} "
        f"(line 1 of {anchor.anchor_path()}) anchored {head.pk} rows up to id={head.pk}, the table ends at "
        f"id={kept.pk}; the newest rows were deleted"
    )


def test_a_gap_in_the_ids_is_caught(tamper: Tamper) -> None:
    first = call()
    gone = [call(), call()]
    after = call()
    # Taken out, and the next row re-linked over the hole, so only the ids show it.
    tamper.sql("DELETE FROM audit_entry WHERE id IN (%s, %s)", [gone[0].pk, gone[1].pk])
    tamper.sql("UPDATE audit_entry SET prev_hash = %s WHERE id = %s", [first.hash, after.pk])
    _recompute_from(tamper, after.pk)
    assert failure().startswith(
        f"FAILED: gap: rows id={gone[0].pk} to id={gone[1].pk} are missing; row id={after.pk} "
        f"({after.request_id}) follows row id={first.pk}"
    )


def test_a_fork_is_caught(tamper: Tamper) -> None:
    parent = call()
    child = call()
    head = call()
    # A second row on the same predecessor, hashed as the project would.
    forged = {
        **AuditEntry.objects.filter(id=child.pk).values(*CONTENT_FIELDS).get(),
        "request_id": "req-forged",
    }
    forged_hash = row_hash(parent.hash, forged)
    tamper.sql(
        "INSERT INTO audit_entry (id, occurred_at, kind, method, path, request_id, attempt, prev_hash, hash) "
        "VALUES (%s, now(), 'call', 'GET', '/v1/x', 'req-forged', 1, %s, %s)",
        [head.pk + 1, parent.hash, forged_hash],
    )
    assert failure().startswith(
        f"FAILED: fork: rows id={child.pk} and id={head.pk + 1} both claim row id={parent.pk} as their "
        f"predecessor (row id={head.pk + 1} (req-forged) was added beside the chain)"
    )


def test_an_altered_anchor_file_is_caught() -> None:
    call()
    services.checkpoint_chain()
    path = anchor.anchor_path()
    (line,) = lines()
    path.write_text(json.dumps({**line, "head_hash": "0" * 64}) + "\n")
    assert failure().startswith(
        f"FAILED: line 1 of {path} does not verify under its key {anchor.key_id(KEY_A)}: "
        "the anchor file was altered"
    )


def test_key_rotation(settings) -> None:
    call()
    services.checkpoint_chain()  # under A
    settings.AUDIT_ANCHOR_KEYS = [KEY_B, KEY_A]  # B signs from now on; A still verifies
    assert services.verify_chain().ok
    call()
    services.checkpoint_chain()
    assert [line["key_id"] for line in lines()] == [anchor.key_id(KEY_A), anchor.key_id(KEY_B)]

    settings.AUDIT_ANCHOR_KEYS = [KEY_B]  # A retired: its line is passed over, the newest is B's
    assert services.verify_chain().ok

    # Whoever kept the retired key cannot append with it behind the current key's checkpoints.
    settings.AUDIT_ANCHOR_KEYS = [KEY_A]
    call()
    forged = anchor.sign(
        head_id=AuditEntry.objects.order_by("-id").first().pk, head_hash="f" * 64, count=1, at=datetime.now()
    )
    anchor.append(forged)
    settings.AUDIT_ANCHOR_KEYS = [KEY_B, KEY_A]
    assert "is signed by an earlier key" in services.verify_chain().message

    # And a newest checkpoint under a key nobody configured is a failure, not a pass.
    settings.AUDIT_ANCHOR_KEYS = [KEY_C]
    assert "which is not among AUDIT_ANCHOR_KEY's keys" in services.verify_chain().message


def test_checkpoints_that_cannot_be_made_show_where_a_broken_chain_shows(settings, tmp_path: Path) -> None:
    """An anchor file altered, or a place that cannot be written: the beat job fails loudly, and the
    failure is the latest verification the dashboard and the audit pages read."""
    from backoffice.audit import queries

    call()
    services.checkpoint_chain()
    path = anchor.anchor_path()
    (line,) = lines()
    path.write_text(json.dumps({**line, "count": 99}) + "\n")
    call()
    with pytest.raises(services.ChainBroken, match="could not be anchored"):
        services.checkpoint_chain()
    latest = queries.latest_verification()
    assert latest is not None and latest.ok is False and "anchor file was altered" in latest.message

    unwritable = tmp_path / "not-a-directory"
    unwritable.write_text("")
    settings.AUDIT_ANCHOR_DIR = unwritable
    with pytest.raises(services.ChainBroken, match="could not be anchored"):
        services.checkpoint_chain()
    assert "could not be anchored" in queries.latest_verification().message
