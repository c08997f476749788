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


@register.filter
def position_of_refusals(guidance: dict, position: object) -> dict | None:
    """Why each instruction type cannot be drafted on the position now (only those that cannot)."""
    refusals = guidance.get(getattr(position, "pk", None)) or {}
    blocked = {kind: why for kind, why in refusals.items() if why}
    return blocked or None
