"""Saving, applying, making default and deleting one's views: every answer goes back to the page."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from backoffice import savedviews
from backoffice.inputs import whole_number
from backoffice.models import SavedView


def _page_url(page: str, query: str = "") -> str:
    url = reverse(savedviews.PAGE_URLS.get(page, savedviews.PAGE_URLS[SavedView.Page.BOOK]))
    # An empty query would bring the default back: say "no filter" in so many words.
    return f"{url}?{query or savedviews.NO_VIEW}"


def _pk(request: HttpRequest) -> int:
    return whole_number(request.POST.get("view", "") or request.GET.get("view", "")) or 0


@require_POST
def save(request: HttpRequest) -> HttpResponse:
    page = request.POST.get("page", "")
    query = request.POST.get("query", "")
    try:
        view = savedviews.save_view(
            request.user,
            page,
            request.POST.get("name", ""),
            query,
            is_default=bool(request.POST.get("is_default")),
        )
    except savedviews.Refused as exc:
        messages.error(request, f"The view was not saved: {exc}")
        return redirect(_page_url(page, "" if page not in savedviews.PAGE_URLS else _safe(query)))
    messages.success(request, f"Saved the view “{view.name}”{' as your default' if view.is_default else ''}.")
    return redirect(_page_url(view.page, view.query))


def _safe(query: str) -> str:
    try:
        return savedviews.clean_query(query)
    except savedviews.Refused:
        return ""


@require_GET
def apply(request: HttpRequest) -> HttpResponse:
    try:
        view = savedviews.owned(request.user, _pk(request))
    except savedviews.Refused as exc:
        messages.error(request, str(exc))
        return redirect(_page_url(request.GET.get("page", "")))
    return redirect(_page_url(view.page, view.query))


@require_POST
def make_default(request: HttpRequest) -> HttpResponse:
    on = request.POST.get("is_default", "1") != "0"
    try:
        view = savedviews.set_default(request.user, _pk(request), is_default=on)
    except savedviews.Refused as exc:
        messages.error(request, str(exc))
        return redirect(_page_url(request.POST.get("page", "")))
    if on:
        messages.success(request, f"“{view.name}” opens when you open this page.")
    else:
        messages.success(request, f"“{view.name}” is no longer your default.")
    return redirect(_page_url(view.page, view.query))


@require_POST
def delete(request: HttpRequest) -> HttpResponse:
    try:
        view = savedviews.delete_view(request.user, _pk(request))
    except savedviews.Refused as exc:
        messages.error(request, str(exc))
        return redirect(_page_url(request.POST.get("page", "")))
    messages.success(request, f"Deleted the view “{view.name}”.")
    return redirect(_page_url(view.page))
