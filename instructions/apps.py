from django.apps import AppConfig


class InstructionsConfig(AppConfig):
    name = "instructions"
