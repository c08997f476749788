from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    verbose_name = "REST API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the token scheme with the OpenAPI generator.
        from api import authentication  # noqa: F401
        from backoffice.audit.links import register_subject

        register_subject("api_token")
