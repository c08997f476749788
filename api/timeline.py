"""An instruction's timeline: the statuses Clear Street reported, the batch's decisions and its cancels'."""

from __future__ import annotations

from typing import Any

from backoffice.audit import queries as audit_queries
from instructions.models import Instruction

KEEP_ACTIONS_LIMIT = 200


def instruction_timeline(instruction: Instruction) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [
        {
            "at": change.observed_at,
            "kind": "status",
            "subject_id": instruction.pk,
            "action": change.source,
            "from_state": change.from_status or None,
            "to_state": change.to_status,
            "actor": None,
            "detail": change.detail,
            "request_id": change.request_id or None,
        }
        for change in instruction.history.all()
    ]
    row = instruction.batch_row
    if row is not None:
        events += _decisions("batch", row.batch_id, "batch_decision")
    for cancel_id in instruction.cancel_requests.values_list("pk", flat=True):
        events += _decisions("cancel_request", cancel_id, "cancel_decision")
    events.sort(key=lambda event: event["at"])
    return events


def _decisions(subject_type: str, subject_id: int, kind: str) -> list[dict[str, Any]]:
    return [
        {
            "at": entry.occurred_at,
            "kind": kind,
            "subject_id": str(subject_id),
            "action": entry.action or "",
            "from_state": entry.from_state,
            "to_state": entry.to_state,
            "actor": entry.actor_username,
            "detail": entry.reason or "",
            "request_id": entry.request_id,
        }
        for entry in audit_queries.entries_for(subject_type, subject_id, limit=KEEP_ACTIONS_LIMIT)
        if entry.kind == entry.Kind.DECISION
    ]
