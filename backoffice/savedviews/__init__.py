"""Saved views: each person's named filters on the book and the worksheet, and their default.

A view is the page's query string, kept as typed (the page's own form checks the values when the
view is applied, as it does for any address). Every read and write here is scoped to its owner:
another person's view is not there (``Refused``), never shown.
"""

from __future__ import annotations

from django.db import transaction
from django.http import QueryDict

from backoffice.models import SavedView
from backoffice.roles import AnyUser

# The page each saved view belongs to, by the URL name that shows it.
PAGE_URLS: dict[str, str] = {
    SavedView.Page.BOOK: "positions:list",
    SavedView.Page.WORKSHEET: "instructions:worksheet",
}
# Parameters that say where on a page one is, not what it shows: never saved.
NOT_SAVED = frozenset({"page", "part", "underlying", "saved"})
MAX_PARAMETERS = 20
NO_VIEW = "saved=none"  # the query that opens a page unfiltered, whatever the default


class Refused(ValueError):
    """A saved view that cannot be saved, applied or changed, in words for the person."""


def clean_query(raw: str) -> str:
    """The filters of a page's query string, re-encoded; refuses what no page of ours would write."""
    limit: int = SavedView._meta.get_field("query").max_length  # type: ignore[assignment]
    raw = raw.strip().lstrip("?")
    if len(raw) > limit:
        raise Refused("These filters are too long to save.")
    params = QueryDict(raw, mutable=True)
    for name in NOT_SAVED:
        params.pop(name, None)
    if len(params) > MAX_PARAMETERS or any(not name.isidentifier() or len(name) > 40 for name in params):
        raise Refused("These are not filters of this page.")
    if any("\x00" in value for values in params.lists() for value in values[1]):
        raise Refused("These are not filters of this page.")
    query = params.urlencode()
    if len(query) > limit:  # encoding may lengthen what was typed
        raise Refused("These filters are too long to save.")
    return query


def clean_name(raw: str) -> str:
    name = " ".join(raw.split())
    if not name:
        raise Refused("Give the view a name.")
    if len(name) > SavedView._meta.get_field("name").max_length:  # type: ignore[operator]
        raise Refused("A view's name is at most 60 characters.")
    if not name.isprintable():
        raise Refused("A view's name holds characters that cannot be shown.")
    return name


def views_for(user: AnyUser, page: str) -> list[SavedView]:
    return list(SavedView.objects.filter(user=user.pk, page=page))


def default_query(user: AnyUser, page: str) -> str | None:
    """The query string of the person's default view of ``page`` (None: they have none)."""
    return (
        SavedView.objects.filter(user=user.pk, page=page, is_default=True)
        .values_list("query", flat=True)
        .first()
    )


def _own(user: AnyUser, pk: int) -> SavedView:
    view = SavedView.objects.select_for_update().filter(user=user.pk, pk=pk).first()
    if view is None:
        raise Refused("That saved view is not there.")
    return view


@transaction.atomic
def save_view(user: AnyUser, page: str, name: str, query: str, *, is_default: bool = False) -> SavedView:
    """Saves the filters under ``name`` (replacing the person's view of that name on that page)."""
    if page not in PAGE_URLS:
        raise Refused("Views are saved on the book and the worksheet only.")
    name, query = clean_name(name), clean_query(query)
    if is_default:
        SavedView.objects.filter(user=user.pk, page=page, is_default=True).exclude(name=name).update(
            is_default=False
        )
    if not user.is_authenticated:
        raise Refused("Sign in to save a view.")
    view, _ = SavedView.objects.update_or_create(
        user_id=int(user.pk), page=page, name=name, defaults={"query": query, "is_default": is_default}
    )
    return view


@transaction.atomic
def set_default(user: AnyUser, pk: int, *, is_default: bool = True) -> SavedView:
    view = _own(user, pk)
    if is_default:
        SavedView.objects.filter(user=user.pk, page=view.page, is_default=True).exclude(pk=pk).update(
            is_default=False
        )
    view.is_default = is_default
    view.save(update_fields=["is_default"])
    return view


@transaction.atomic
def delete_view(user: AnyUser, pk: int) -> SavedView:
    view = _own(user, pk)
    view.delete()
    return view


def owned(user: AnyUser, pk: int) -> SavedView:
    view = SavedView.objects.filter(user=user.pk, pk=pk).first()
    if view is None:
        raise Refused("That saved view is not there.")
    return view
