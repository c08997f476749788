"""``{% load audit_tags %}``: the chain alert for the dashboard, audit rows for object pages."""

from __future__ import annotations

from typing import Any

from django import template

from backoffice.audit import queries

register = template.Library()


@register.inclusion_tag("includes/audit_alert.html", takes_context=True)
def audit_alert(context: template.Context) -> dict[str, Any]:
    """``{% audit_alert %}``: a banner when the last chain verification failed.

    Shown to those who can act on it (compliance, admins, operators); one query, none for others.
    """
    can = context.get("can") or {}
    if not (can.get("audit") or can.get("operate")):
        return {"verification": None}
    latest = queries.latest_verification()
    return {
        "verification": latest if latest is not None and latest.ok is False else None,
        "can_audit": bool(can.get("audit")),
    }


@register.inclusion_tag("audit/_entries_table.html", takes_context=True)
def audit_entries_for(context: template.Context, subject_type: str, subject_id: Any) -> dict[str, Any]:
    """``{% audit_entries_for "batch" batch.pk %}`` on a page whose viewer may see that object."""
    return _table(context, queries.entries_for(subject_type, subject_id))


@register.inclusion_tag("audit/_entries_table.html", takes_context=True)
def audit_entries_for_account(context: template.Context, account_id: int) -> dict[str, Any]:
    return _table(context, queries.entries_for_account(account_id))


@register.inclusion_tag("audit/_entries_table.html", takes_context=True)
def audit_entries_listed(context: template.Context, entries: list[Any]) -> dict[str, Any]:
    """The table for rows a page already chose (e.g. everything that touched one position)."""
    return _table(context, entries)


def _table(context: template.Context, entries: list[Any]) -> dict[str, Any]:
    can = context.get("can") or {}
    return {"entries": entries, "can_audit": bool(can.get("audit"))}
