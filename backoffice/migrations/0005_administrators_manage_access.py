"""Administrators manage access through four-eyes requests (manage_access); the stock user admin
only shows people, so its add, change and delete permissions are taken back."""

from django.db import migrations


def grant(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    role_type, _ = ContentType.objects.get_or_create(app_label="backoffice", model="role")
    manage, _ = Permission.objects.get_or_create(
        content_type=role_type,
        codename="manage_access",
        defaults={"name": "Can request and approve changes to users, desks and access"},
    )
    admins, _ = Group.objects.get_or_create(name="admins")
    admins.permissions.add(manage)
    admins.permissions.remove(
        *Permission.objects.filter(
            content_type__app_label="auth", codename__in=["add_user", "change_user", "delete_user"]
        )
    )


def revoke(apps, schema_editor):
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    Group.objects.get(name="admins").permissions.remove(
        *Permission.objects.filter(content_type__app_label="backoffice", codename="manage_access")
    )


class Migration(migrations.Migration):
    dependencies = [("backoffice", "0004_access_requests")]
    operations = [migrations.RunPython(grant, revoke)]
