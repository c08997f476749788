from django.db import models


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
