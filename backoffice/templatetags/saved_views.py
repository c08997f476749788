"""``{% saved_views "book" %}``: the person's saved views of a page, and a form to save the filters on
screen under a name."""

from __future__ import annotations

from typing import Any

from django import template

from backoffice import savedviews

register = template.Library()


@register.inclusion_tag("includes/saved_views.html", takes_context=True)
def saved_views(context: template.Context, page: str) -> dict[str, Any]:
    request = context["request"]
    try:
        current = savedviews.clean_query(request.GET.urlencode())
    except savedviews.Refused:
        current = ""
    views = savedviews.views_for(request.user, page)
    return {
        "page": page,
        "views": views,
        "current": current,
        "applied": next((view for view in views if view.query == current and current), None),
        "no_view": savedviews.NO_VIEW,
        "csrf_token": context.get("csrf_token"),
    }
