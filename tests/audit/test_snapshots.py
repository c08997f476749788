"""A decision's before and after snapshots: what did not change is redacted and hashed once, what
changed is recorded as it is (even a change only of type), and the chain verifies."""

from __future__ import annotations

import pytest

from backoffice.audit import services
from backoffice.audit.chain import canonical_json
from backoffice.audit.models import AuditEntry
from backoffice.audit.redaction import REDACTED, sanitize, sanitize_pair
from tests.audit.conftest import AUDIT_DBS

ROWS = [{"symbol": f"AAPL  260424C{n:05d}000", "quantity": n + 1, "status": ""} for n in range(300)]


def test_unchanged_values_are_shared_and_changed_ones_recorded_as_they_are(settings) -> None:
    settings.CLEAR_STREET_API_KEY = "sk-live-0123456789"
    before = {"status": "approved", "active": 1, "rows": ROWS, "note": "key sk-live-0123456789", "token": "t"}
    after = {**before, "status": "submitting", "active": True, "rows": [dict(row) for row in ROWS]}
    clean_before, clean_after = sanitize_pair(before, after)
    assert (clean_before, clean_after) == (sanitize(before), sanitize(after))
    assert clean_after["rows"] is clean_before["rows"]  # redacted once
    # 1 and True are equal in Python, not in the record.
    assert clean_before["active"] == 1 and clean_after["active"] is True
    assert clean_after["note"] == "key [REDACTED]" and clean_after["token"] == REDACTED


def test_a_tree_met_twice_is_written_alike() -> None:
    shared = [{"b": 1, "a": [1.5, "x"]}]
    assert canonical_json({"before": shared, "after": shared}) == canonical_json(
        {"before": [{"b": 1, "a": [1.5, "x"]}], "after": [{"a": [1.5, "x"], "b": 1}]}
    )


@pytest.mark.django_db(databases=AUDIT_DBS)
def test_a_transition_of_a_large_batch_keeps_both_snapshots_whole_and_the_chain_verifies() -> None:
    before = {"status": "approved", "rows": ROWS}
    entry = services.record_decision(
        action="submitting",
        actor=None,
        subject_type="batch",
        subject_id="b-7",
        before=before,
        after={**before, "status": "submitting"},
    )
    stored = AuditEntry.objects.get(pk=entry.pk)
    assert stored.before == before and stored.after == {"status": "submitting", "rows": ROWS}
    assert services.verify_chain().ok
