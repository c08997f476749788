from django.apps import AppConfig


class PositionsConfig(AppConfig):
    name = "positions"

    def ready(self) -> None:
        from backoffice.audit.links import register_subject

        register_subject("account", "positions:account_detail")
        register_subject("close_request", "positions:close_detail")
        register_subject("sync_run", "positions:sync_run_detail")
        register_subject("official_close")
