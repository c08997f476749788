"""``{% load audit_tags %}``: the chain alert for the dashboard, audit rows for object pages."""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import template
from django.conf import settings
from django.urls import reverse
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString

from backoffice.audit import queries

register = template.Library()

# Per-row helpers of the audit tables, written in Python: a table of hundreds of rows spent most of
# its time in the template engine's timezone and date filters, an include and a URL reversal per row.


@register.filter
def market_second(moment: datetime | None) -> str:
    """``{{ e.occurred_at|market_second }}``: New York's wall clock, to the second."""
    if moment is None:
        return ""
    return moment.astimezone(ZoneInfo(settings.MARKET_TIME_ZONE)).strftime("%Y-%m-%d %H:%M:%S")


@register.filter
def audit_status(entry: Any) -> SafeString | str:
    """``{{ e|audit_status }}``: a call's answer as a pill (nothing for a decision)."""
    if entry.kind == "decision":
        return ""
    if entry.status_code is None:
        return format_html(
            '<span class="pill bad" title="{}">{}</span>',
            entry.error_message or "",
            entry.error_class or "no response",
        )
    code = entry.status_code
    tone = "ok" if code < 300 else "warn" if code < 500 else "bad"
    return format_html('<span class="pill {}">{}</span>', tone, code)


@register.filter
def audit_url(entry_id: int) -> str:
    """``{{ e.pk|audit_url }}``: the row's own page."""
    return f"{_audit_root()}{int(entry_id)}/"


@functools.cache
def _audit_root() -> str:
    return reverse("audit:list")


@register.simple_tag
def audit_list_rows(entries: list[Any]) -> SafeString:
    """``{% audit_list_rows page.entries %}``: the audit list's rows (hundreds a page), built here."""
    if not entries:
        return format_html(
            '<tr><td colspan="12" class="muted">{}</td></tr>', "No audit entries match these filters."
        )
    return SafeString("".join(_list_row(e) for e in entries))


def _list_row(e: Any) -> str:
    # f-strings over escaped values: format_html per cell cost more than the rest of the row.
    if e.kind == "decision":
        kind = '<span class="pill info">decision</span>'
        call: str = escape(e.action or "")
        if e.from_state or e.to_state:
            call += f' <span class="muted">{escape(e.from_state or "·")} → {escape(e.to_state or "·")}</span>'
    else:
        kind = '<span class="pill">call</span>'
        call = f"{escape(e.method or '')} {escape(e.path or '')}"
    linked = escape(f"{e.subject_type}:{e.subject_id}") if e.subject_type else ""
    return (
        f'<tr><td class="mono nowrap">{market_second(e.occurred_at)}</td><td>{kind}</td>'
        f'<td class="mono audit-call">{call}</td><td>{audit_status(e)}</td>'
        f'<td class="mono">{escape(e.request_id or "")}</td><td class="num">{whole_ms(e.duration_ms)}</td>'
        f'<td class="num">{"" if e.attempt is None else int(e.attempt)}</td>'
        f"<td>{escape(e.actor_username or '')}</td><td>{escape(e.approver_username or '')}</td>"
        f'<td class="mono">{"" if e.account_id is None else int(e.account_id)}</td>'
        f'<td class="mono">{linked}</td><td><a href="{audit_url(e.pk)}">details</a></td></tr>'
    )


@register.filter
def whole_ms(value: float | None) -> str:
    """``{{ e.duration_ms|whole_ms }}``: milliseconds rounded half up, as ``floatformat:0`` does."""
    if value is None:
        return ""
    return str(Decimal(repr(value)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


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
