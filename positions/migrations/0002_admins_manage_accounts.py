"""Administrators manage the followed accounts in the Django admin."""

from django.db import migrations

ACTIONS = ("view", "add", "change")


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    account_type, _ = ContentType.objects.get_or_create(app_label="positions", model="account")
    admins = Group.objects.get(name="admins")
    for action in ACTIONS:
        permission, _ = Permission.objects.get_or_create(
            content_type=account_type, codename=f"{action}_account", defaults={"name": f"Can {action} account"}
        )
        admins.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    Group.objects.get(name="admins").permissions.remove(
        *Permission.objects.filter(content_type__app_label="positions", codename__endswith="_account")
    )


class Migration(migrations.Migration):
    dependencies = [("positions", "0001_initial"), ("backoffice", "0002_role_groups")]
    operations = [migrations.RunPython(grant, revoke)]
