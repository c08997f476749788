"""Template helpers of the book: sortable column headers."""

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_header(context: template.Context, key: str, label: str, numeric: bool = False) -> str:
    """A column header that sorts by ``key``, toggling the direction when it is already the sort."""
    filters = context["filters"]
    current = filters.sort == key
    direction = "desc" if current and not filters.descending else "asc"
    arrow = ("▼" if filters.descending else "▲") if current else ""
    query = context.get("sort_query", "")
    href = f"?{query}&sort={key}&dir={direction}" if query else f"?sort={key}&dir={direction}"
    return format_html(
        '<th scope="col" class="{}"{}><a href="{}">{}</a> {}</th>',
        "num" if numeric else "",
        format_html(' aria-sort="{}"', "descending" if filters.descending else "ascending")
        if current
        else "",
        href,
        label,
        arrow,
    )
