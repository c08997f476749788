from django.apps import AppConfig


class InstructionsConfig(AppConfig):
    name = "instructions"

    def ready(self) -> None:
        from backoffice.audit.links import register_subject

        register_subject("batch", "instructions:batch_detail")
        register_subject("cancel_request", "instructions:cancel_detail")
        register_subject("instruction", "instructions:instruction_detail")
