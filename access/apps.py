from django.apps import AppConfig


class AccessConfig(AppConfig):
    """Who may see and do what: user administration under four eyes, second factor, single sign-on,
    passwords, sign-in throttling, and the audit of every access change."""

    name = "access"
    verbose_name = "Access"

    def ready(self) -> None:
        from access import signals  # noqa: F401  # sign-in, sign-out, failures and lockouts on the chain
        from backoffice.audit.links import register_subject

        register_subject("user", "access:user_detail")
        register_subject("access_request", "access:request_detail")
        register_subject("desk")
        register_subject("sign_in")
