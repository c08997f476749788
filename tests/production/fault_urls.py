"""Every URL of the product, and one that raises (tests only: see fault_settings)."""

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse
from django.urls import path

from backoffice.urls import handler403, handler404, handler500, urlpatterns

__all__ = ["handler403", "handler404", "handler500", "urlpatterns"]


class RehearsedFault(RuntimeError):
    pass


@login_not_required
def fail(request: HttpRequest) -> HttpResponse:
    raise RehearsedFault("a rehearsed failure: the 500 page must not show this")


urlpatterns = [path("rehearsal/fail/", fail), *urlpatterns]
