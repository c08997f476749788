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
            ("manage_access", "Can request and approve changes to users, desks and access"),
        ]

    def __str__(self) -> str:
        return "role permissions"


class Acknowledgeable(models.Model):
    """A request that can end short of its goal (failed, rejected upstream, unknown) stays on the
    attention list of everyone concerned until a person acknowledges it, with a reason (audited)."""

    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledgement = models.TextField(blank=True, help_text="What the person who acknowledged it did")

    class Meta:
        abstract = True

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None


class FourEyesRequest(Acknowledgeable):
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
    # Text: Clear Street's request ids have no documented length, and a long one must never fail a save.
    request_id = models.TextField(blank=True, help_text="Clear Street's request_id of the call")
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


class Job(models.Model):
    """Work that must follow a committed decision (send a batch, a cancel, a close; run a sync).

    Written in the same transaction as the decision, then handed to the task queue once it commits;
    a job the queue could not take (the broker was down) stays here until the sweeper hands it on,
    so an outage delays the work and never loses it. See ``backoffice.jobs``.
    """

    task = models.CharField(max_length=100, help_text="The Celery task's registered name")
    args = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True, help_text="When the task queue took it")
    dispatch_attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["created_at"], condition=Q(dispatched_at__isnull=True), name="job_waiting_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"job #{self.pk} {self.task}{tuple(self.args)}"


class AccessRequest(FourEyesRequest):
    """A change to who may do what (a new user, roles, desks, reactivation, a token for someone
    else), requested by one administrator and carried out only once a second one approves it.

    It lives in the kernel because the four-eyes rule reads it: a checker may not decide the
    requests of the person who asked for the checker's own access (``workflow.require_checker``).
    """

    class Kind(models.TextChoices):
        CREATE_USER = "create_user", "Create a user"
        CHANGE_ACCESS = "change_access", "Grant roles or desks"
        REACTIVATE = "reactivate", "Reactivate a user"
        ISSUE_TOKEN = "issue_token", "API token for someone else"

    class Status(models.TextChoices):
        PENDING_APPROVAL = "pending_approval", "Pending approval"
        APPROVED = "approved", "Approved"
        APPLYING = "applying", "Applying"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        REJECTED = "rejected", "Rejected by checker"
        WITHDRAWN = "withdrawn", "Withdrawn"

    TRANSITIONS: dict[str, frozenset[str]] = {
        Status.PENDING_APPROVAL: frozenset({Status.APPROVED, Status.REJECTED, Status.WITHDRAWN}),
        Status.APPROVED: frozenset({Status.APPLYING}),
        Status.APPLYING: frozenset({Status.APPLIED, Status.FAILED}),
        Status.APPLIED: frozenset(),
        Status.FAILED: frozenset(),
        Status.REJECTED: frozenset(),
        Status.WITHDRAWN: frozenset(),
    }
    OPEN = frozenset({Status.PENDING_APPROVAL, Status.APPROVED, Status.APPLYING})

    kind = models.CharField(max_length=24, choices=Kind.choices)
    # Whom it is about; empty for a user not yet created.
    subject = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    change = models.JSONField(default=dict, blank=True, help_text="What is to change, as requested")
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING_APPROVAL)
    applied_at = models.DateTimeField(null=True, blank=True)

    class Meta(FourEyesRequest.Meta):
        constraints = [
            *FourEyesRequest.Meta.constraints,
            # Nobody asks for their own access.
            models.CheckConstraint(
                condition=Q(subject__isnull=True) | ~Q(subject=models.F("requested_by")),
                name="access_request_not_about_its_maker",
            ),
        ]
        indexes = [models.Index(fields=["subject", "status"])]

    def __str__(self) -> str:
        return f"access request #{self.pk} ({self.get_kind_display()}, {self.status})"


class SavedView(models.Model):
    """A person's named filters on a page (the book, the worksheet), kept as the page's query string;
    at most one per page is their default, applied when they open the page with no query. Nobody
    else sees them (``backoffice.savedviews``)."""

    class Page(models.TextChoices):
        BOOK = "book", "Positions"
        WORKSHEET = "worksheet", "Expiration worksheet"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    page = models.CharField(max_length=16, choices=Page.choices)
    name = models.CharField(max_length=60)
    query = models.CharField(max_length=1000, blank=True, help_text="The page's query string, without '?'")
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["page", "name"]
        constraints = [
            models.UniqueConstraint(fields=["user", "page", "name"], name="saved_view_name_per_page"),
            models.UniqueConstraint(
                fields=["user", "page"], condition=Q(is_default=True), name="saved_view_one_default_per_page"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} · {self.page} · {self.name}"
