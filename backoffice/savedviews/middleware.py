"""Opening the book or the worksheet with no query at all shows the person's default view."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from backoffice import savedviews


class DefaultViewMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self._pages: dict[str, str] | None = None

    def pages(self) -> dict[str, str]:
        """By path, the page it shows (resolved on first use: the URLs are not loaded at start)."""
        if self._pages is None:
            self._pages = {reverse(name): page for page, name in savedviews.PAGE_URLS.items()}
        return self._pages

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and not request.META.get("QUERY_STRING") and request.user.is_authenticated:
            page = self.pages().get(request.path)
            query = savedviews.default_query(request.user, page) if page else None
            if query is not None:
                return redirect(f"{request.path}?{query or savedviews.NO_VIEW}")
        return self.get_response(request)
