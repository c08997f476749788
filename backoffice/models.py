from django.conf import settings
from django.db import models
from django.db.models import Q


class Role(models.Model):
    """Anchor for the back-office's role permissions; holds no rows.

    The permissions below are granted to groups (see ``backoffice.roles``) and checked by pages
    and the API. Model permissions of the business apps are granted alongside them.
    """

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [
            ("view_book", "Can view accounts, positions, instructions and orders"),
            ("draft_requests", "Can draft instruction batches, cancels and closes (maker)"),
            ("approve_requests", "Can approve or reject others' requests (checker)"),
            ("view_audit", "Can read the whole audit trail (compliance)"),
            ("operate_system", "Can trigger syncs and operate the back-office"),
        ]

    def __str__(self) -> str:
        return "role permissions"


class FourEyesRequest(models.Model):
    """What every request decided by a second person records: who asked, who decided, and the outcome.

    The database refuses a row whose checker is its maker, whatever code writes it.
    """

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    requested_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True)
    request_id = models.CharField(
        max_length=64, blank=True, help_text="Clear Street's request_id of the call"
    )
    error = models.TextField(blank=True)

    class Meta:
        abstract = True
        ordering = ["-requested_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(decided_by__isnull=True) | ~Q(decided_by=models.F("requested_by")),
                name="%(app_label)s_%(class)s_maker_is_not_checker",
            ),
        ]
