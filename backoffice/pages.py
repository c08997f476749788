"""What every page that carries out a person's action does with the outcome."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect

from backoffice.workflow import ActionRefused


def refused(request: HttpRequest, exc: ActionRefused, back: str) -> HttpResponse:
    """Show why the rules said no (every row's reason, for an invalid batch) and go back; a request
    that is not there for this person (gone, or another desk's) is the not-found page, as its own
    page would be."""
    if exc.code == "not_found":
        raise Http404(exc.message)
    messages.error(request, exc.message)
    for error in getattr(exc, "errors", [])[1:]:
        messages.error(request, f"Row {error.row + 1}: {error.message}")
    return redirect(back)


def carry_out(request: HttpRequest, act: Callable[[], object], *, success: str, back: str) -> HttpResponse:
    """Run a service action for the person; a refusal becomes a message, never an error page."""
    try:
        act()
    except ActionRefused as exc:
        return refused(request, exc, back)
    messages.success(request, success)
    return redirect(back)
