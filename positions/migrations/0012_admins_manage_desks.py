"""Administrators manage desks (their accounts) in the Django admin; members change by access requests."""

from django.db import migrations

ACTIONS = ("view", "add", "change")


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    desk_type, _ = ContentType.objects.get_or_create(app_label="positions", model="desk")
    admins = Group.objects.get(name="admins")
    for action in ACTIONS:
        permission, _ = Permission.objects.get_or_create(
            content_type=desk_type, codename=f"{action}_desk", defaults={"name": f"Can {action} desk"}
        )
        admins.permissions.add(permission)


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    Group.objects.get(name="admins").permissions.remove(
        *Permission.objects.filter(content_type__app_label="positions", codename__endswith="_desk")
    )


class Migration(migrations.Migration):
    dependencies = [("positions", "0011_desk"), ("backoffice", "0002_role_groups")]
    operations = [migrations.RunPython(grant, revoke)]
