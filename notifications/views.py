"""The notifications list, marking read, and a person's preferences. Everyone signed in has these:
each page reads and writes the person's own rows only."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from notifications import queries, services
from notifications.forms import PreferencesForm


def _person(request: HttpRequest) -> User:
    user = request.user
    if not isinstance(user, User):
        raise Http404("Sign in to read notifications.")
    return user


def _form(user: User, data: object = None) -> PreferencesForm:
    current = {kind: channels for kind, _label, channels in queries.preferences(user)}
    return PreferencesForm(data, current=current)


@require_GET
def notification_list(request: HttpRequest) -> HttpResponse:
    user = _person(request)
    context = {
        "notifications": queries.recent(user),
        "unread": queries.unread_count(user),
        "form": _form(user),
    }
    return render(request, "notifications/list.html", context)


@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    if services.mark_read(_person(request), pk) is None:
        raise Http404("No such notification.")
    return redirect("notifications:list")


@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    count = services.mark_all_read(_person(request))
    messages.success(request, f"{count} notification{'s' if count != 1 else ''} marked read.")
    return redirect("notifications:list")


@require_POST
def preferences(request: HttpRequest) -> HttpResponse:
    user = _person(request)
    form = _form(user, request.POST)
    if not form.is_valid():  # checkboxes: only a forged form gets here
        messages.error(request, "The preferences were not valid; nothing changed.")
        return redirect("notifications:list")
    services.save_preferences(user, form.chosen())
    messages.success(request, "Your notification preferences are saved.")
    return redirect("notifications:list")
