"""Pages of the instructions app."""

from __future__ import annotations

from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from backoffice import roles

view_book = permission_required(roles.VIEW_BOOK, raise_exception=True)


@view_book
@require_GET
def batch_list(request: HttpRequest) -> HttpResponse:
    return render(request, "instructions/batches.html", {})
