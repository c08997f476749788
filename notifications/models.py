"""A person's notifications (folded: one row per kind and object while it keeps happening) and the
channels each person wants for each kind."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Kind(models.TextChoices):
    AWAITING_APPROVAL = "awaiting_approval", "Something awaits your approval"
    DECISION = "decision", "A decision on your request"
    NOT_DONE = "not_done", "A submission failed, was partly rejected or its outcome is unknown"
    REJECTED_LATER = "rejected_later", "Clear Street rejected instructions after they were sent"
    EXPIRING = "expiring", "A batch will expire unapproved"
    BOOK = "book", "A book is stale or its sync keeps failing"
    CHAIN = "chain", "The audit chain's verification failed"


class Notification(models.Model):
    """What one person is told. ``key`` names the object and the occasion; a repeat of the same kind
    and key while the row is unread and recent adds to ``count`` instead of a new message."""

    recipient = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    key = models.CharField(max_length=200)
    title = models.CharField(max_length=300)
    detail = models.TextField(blank=True)
    url = models.CharField(max_length=500, blank=True, help_text="The object's page, relative to the site.")
    count = models.PositiveIntegerField(default=1)
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()
    read_at = models.DateTimeField(null=True, blank=True)
    # Whether the bell and the list show it (the person's in-app preference), and whether to e-mail it.
    in_app = models.BooleanField(default=True)
    email_wanted = models.BooleanField(default=False)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_at", "-id"]
        indexes = [
            models.Index(fields=["recipient", "kind", "key"], name="notification_fold"),
            models.Index(
                fields=["recipient"],
                condition=models.Q(read_at=None, in_app=True),
                name="notification_unread",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} → {self.recipient_id}: {self.title}"


class Preference(models.Model):
    """One person's channels for one kind; no row means both channels on."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    in_app = models.BooleanField(default=True)
    email = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_preference_per_kind")]

    def __str__(self) -> str:
        return f"{self.user_id} {self.kind}: in_app={self.in_app} email={self.email}"
