"""Saved views: a person's named filters on the book and the worksheet, their default, and nobody
else's."""

from __future__ import annotations

import pytest
from django.urls import reverse

from backoffice.models import SavedView

pytestmark = pytest.mark.django_db(databases=["default", "audit"])

BOOK = "/positions/"


def save(client, name: str, query: str, page: str = "book", default: bool = False):
    data = {"page": page, "name": name, "query": query}
    if default:
        data["is_default"] = "1"
    return client.post(reverse("saved_views:save"), data)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def test_save_then_apply_a_view_of_the_book(client, users):
    client.force_login(users["operations"])
    response = save(client, "  Options   of 11 ", "account=11&instrument_type=OPTION&page=3")
    view = SavedView.objects.get(user=users["operations"])
    # The name is tidied; where one was in the list (the page number) is not a filter, so not kept.
    assert (view.name, view.query, view.is_default) == (
        "Options of 11",
        "account=11&instrument_type=OPTION",
        False,
    )
    assert response.status_code == 302 and response["Location"] == f"{BOOK}?account=11&instrument_type=OPTION"
    applied = client.get(reverse("saved_views:apply"), {"view": view.pk})
    assert applied["Location"] == f"{BOOK}?account=11&instrument_type=OPTION"
    page = client.get(applied["Location"])
    html = page.content.decode()
    assert "Saved views: <strong>Options of 11</strong>" in html
    assert page.context["filters"].instrument_type == "OPTION"


def test_the_default_opens_with_the_page_and_can_be_left(client, users):
    client.force_login(users["operations"])
    save(client, "Eleven", "account=11", default=True)
    assert client.get(BOOK)["Location"] == f"{BOOK}?account=11"
    # A second default replaces the first; a link with any query, or "no saved view", shows what it says.
    save(client, "Options", "instrument_type=OPTION", default=True)
    assert list(SavedView.objects.filter(is_default=True).values_list("name", flat=True)) == ["Options"]
    assert client.get(BOOK)["Location"] == f"{BOOK}?instrument_type=OPTION"
    assert client.get(BOOK, {"saved": "none"}).status_code == 200
    options = SavedView.objects.get(name="Options")
    client.post(reverse("saved_views:default"), {"view": options.pk, "is_default": "0"})
    assert client.get(BOOK).status_code == 200


def test_make_default_and_delete(client, users):
    client.force_login(users["operations"])
    save(client, "Eleven", "account=11")
    view = SavedView.objects.get()
    client.post(reverse("saved_views:default"), {"view": view.pk})
    assert SavedView.objects.get().is_default
    response = client.post(reverse("saved_views:delete"), {"view": view.pk}, follow=True)
    assert not SavedView.objects.exists()
    assert "Deleted the view “Eleven”." in messages_of(response)
    assert client.get(BOOK).status_code == 200  # no default any more


def test_worksheet_views_are_apart_from_the_books(client, users):
    client.force_login(users["operations"])
    save(client, "Friday", "day=2026-04-24", page="worksheet", default=True)
    worksheet = reverse("instructions:worksheet")
    assert client.get(worksheet)["Location"] == f"{worksheet}?day=2026-04-24"
    assert client.get(BOOK).status_code == 200


def test_nobody_sees_or_touches_anothers_views(client, users):
    client.force_login(users["operations"])
    client.get(save(client, "Mine", "account=11", default=True)["Location"])  # its message shown
    mine = SavedView.objects.get()
    client.force_login(users["operations2"])
    page = client.get(BOOK)
    assert page.status_code == 200 and "Mine" not in page.content.decode()
    for url, method in (
        (reverse("saved_views:apply"), client.get),
        (reverse("saved_views:default"), client.post),
        (reverse("saved_views:delete"), client.post),
    ):
        response = method(url, {"view": mine.pk}, follow=True)
        assert response.status_code == 200
        assert "That saved view is not there." in messages_of(response)
    mine.refresh_from_db()
    assert mine.is_default and mine.name == "Mine"
    save(client, "Mine", "account=22")  # the same name is theirs to use
    assert SavedView.objects.count() == 2


@pytest.mark.parametrize(
    "data, message",
    [
        ({"page": "book", "name": "", "query": "account=11"}, "Give the view a name."),
        ({"page": "book", "name": "x" * 61, "query": ""}, "at most 60 characters"),
        ({"page": "book", "name": "bell\x07", "query": ""}, "cannot be shown"),
        ({"page": "book", "name": "long", "query": "q=" + "a" * 1200}, "too long"),
        ({"page": "book", "name": "encoded", "query": "q=" + "é" * 400}, "too long"),
        ({"page": "book", "name": "odd", "query": "no%20such=1"}, "not filters of this page"),
        ({"page": "audit", "name": "audit", "query": ""}, "book and the worksheet only"),
    ],
)
def test_bad_input_is_a_message_never_an_error(client, users, data, message):
    client.force_login(users["operations"])
    response = client.post(reverse("saved_views:save"), data, follow=True)
    assert response.status_code == 200
    assert any(message in m for m in messages_of(response)), messages_of(response)
    assert not SavedView.objects.exists()


@pytest.mark.parametrize("view", ["", "abc", "-1", "99999999999999999999"])
def test_an_unknown_view_is_a_message(client, users, view):
    client.force_login(users["operations"])
    assert client.get(reverse("saved_views:apply"), {"view": view}, follow=True).status_code == 200
    assert client.post(reverse("saved_views:delete"), {"view": view}, follow=True).status_code == 200
