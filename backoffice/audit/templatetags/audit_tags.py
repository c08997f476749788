"""``{% load audit_tags %}``: the chain alert for the dashboard, audit rows for object pages."""

from __future__ import annotations

import functools
import html
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms, template
from django.conf import settings
from django.urls import reverse
from django.utils.html import format_html
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
    # isoformat cut before the offset: the same text as strftime("%Y-%m-%d %H:%M:%S"), at half the cost.
    return moment.astimezone(_market_zone()).isoformat(" ", "seconds")[:19]


@functools.cache
def _market_zone() -> ZoneInfo:
    return ZoneInfo(settings.MARKET_TIME_ZONE)


@register.filter
def audit_status(entry: Any) -> SafeString | str:
    """``{{ e|audit_status }}``: a call's answer as a pill (nothing for a decision)."""
    if entry.kind == "decision":
        return ""
    if entry.status_code is None:
        title, label = _text(entry.error_message or ""), _text(entry.error_class or "no response")
        return SafeString(f'<span class="pill bad" title="{title}">{label}</span>')
    code = int(entry.status_code)
    tone = "ok" if code < 300 else "warn" if code < 500 else "bad"
    return SafeString(f'<span class="pill {tone}">{code}</span>')


def _text(value: object) -> str:
    # The standard library's escape, as Django's does, without its lazy-string wrapper (per cell).
    return html.escape(str(value))


@register.filter
def audit_url(entry_id: int) -> str:
    """``{{ e.pk|audit_url }}``: the row's own page."""
    return f"{_audit_root()}{int(entry_id)}/"  # the root reversed once, the id appended


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
        call: str = _text(e.action or "")
        if e.from_state or e.to_state:
            call += f' <span class="muted">{_text(e.from_state or "·")} → {_text(e.to_state or "·")}</span>'
    else:
        kind = '<span class="pill">call</span>'
        call = f"{_text(e.method or '')} {_text(e.path or '')}"
    linked = _text(f"{e.subject_type}:{e.subject_id}") if e.subject_type else ""
    return (
        f'<tr><td class="mono nowrap">{market_second(e.occurred_at)}</td><td>{kind}</td>'
        f'<td class="mono audit-call">{call}</td><td>{audit_status(e)}</td>'
        f'<td class="mono">{_text(e.request_id or "")}</td><td class="num">{whole_ms(e.duration_ms)}</td>'
        f'<td class="num">{"" if e.attempt is None else int(e.attempt)}</td>'
        f"<td>{_text(e.actor_username or '')}</td><td>{_text(e.approver_username or '')}</td>"
        f'<td class="mono">{"" if e.account_id is None else int(e.account_id)}</td>'
        f'<td class="mono">{linked}</td><td><a href="{audit_url(e.pk)}">details</a></td></tr>'
    )


@register.filter
def whole_ms(value: float | None) -> str:
    """``{{ e.duration_ms|whole_ms }}``: milliseconds rounded half up, as ``floatformat:0`` does."""
    if value is None:
        return ""
    return str(Decimal(repr(value)).quantize(_ONE, rounding=ROUND_HALF_UP))


_ONE = Decimal(1)


# --- The filter form, rendered here: Django's widget templates cost more than the rest of the page ---


@register.simple_tag
def audit_filter_fields(form: forms.Form) -> SafeString:
    """``{% audit_filter_fields form %}``: each visible field with its label, widget and errors, the
    same markup Django's widget templates produce; an error is the target of its aria-describedby."""
    return SafeString("".join(_filter_field(field) for field in form.visible_fields()))


def _filter_field(field: forms.BoundField) -> str:
    errors = "".join(
        f'<p class="field-error" id="{field.auto_id}_error">{_text(error)}</p>' for error in field.errors
    )
    return (
        f'<div class="audit-filter{" has-error" if field.errors else ""}">'
        f'<label for="{field.id_for_label}">{_text(field.label or "")}</label>'
        f"{widget_html(field)}{errors}</div>"
    )


def widget_html(field: forms.BoundField) -> str:
    """The field's widget as ``str(field)`` would render it (inputs and selects), without templates."""
    widget = field.field.widget
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
    if isinstance(widget, forms.Select):
        options = "".join(
            f'<option value="{_text(o["value"])}"{_attrs(o["attrs"])}>{_text(o["label"])}</option>'
            for _, group, _ in context["optgroups"]
            for o in group
        )
        return f'<select name="{_text(context["name"])}"{_attrs(context["attrs"])}>{options}</select>'
    value = "" if context["value"] is None else f' value="{_text(context["value"])}"'
    return (
        f'<input type="{context["type"]}" name="{_text(context["name"])}"{value}{_attrs(context["attrs"])}>'
    )


def _attrs(attrs: dict[str, Any]) -> str:
    return "".join(
        f" {name}" if value is True else f' {name}="{_text(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


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
