from django.apps import AppConfig
from django.db.models.signals import post_save


class AuditConfig(AppConfig):
    name = "backoffice.audit"
    label = "audit"
    verbose_name = "Audit trail"

    def ready(self) -> None:
        from backoffice.audit import queries
        from backoffice.audit.models import ChainVerification

        # A verification that starts or finishes shows on this process's next page, not after the TTL.
        post_save.connect(queries.forget_chain_status, sender=ChainVerification, weak=False)
