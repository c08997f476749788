"""Template helpers of the instructions pages."""

from django import template

register = template.Library()


@register.filter
def position_of(positions: dict, form) -> object | None:
    """The position a batch-row form is about, whether the form is fresh or re-shown with errors."""
    raw = form["position_id"].value()
    try:
        return positions.get(int(raw))
    except (TypeError, ValueError):
        return None
