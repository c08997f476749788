"""Figures for the dashboard's charts, summed in the database. (The worksheet's pictures are drawn
from the sums the worksheet itself makes: ``instructions.templatetags.worksheet_charts``.)"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db.models import Count

from backoffice.roles import AnyUser
from instructions.models import Batch


def batches_by_status(viewer: AnyUser, day: date) -> dict[int, dict[str, int]]:
    """The viewer's desks' batches for the business date ``day``: by account number, how many in each
    status."""
    found: dict[int, dict[str, int]] = defaultdict(dict)
    for row in (
        Batch.objects.visible_to(viewer)
        .filter(business_date=day)
        .values("account__number", "status")
        .annotate(batches=Count("id"))
        .order_by("account__number")
    ):
        found[row["account__number"]][row["status"]] = row["batches"]
    return dict(found)
