"""Create the four role groups with their permissions (the table lives in backoffice.roles)."""

from django.db import migrations

# Frozen copy of backoffice.roles.ROLE_PERMISSIONS as of this migration; later changes to the
# table get migrations of their own.
PERMISSION_NAMES = {
    "view_book": "Can view accounts, positions, instructions and orders",
    "draft_requests": "Can draft instruction batches, cancels and closes (maker)",
    "approve_requests": "Can approve or reject others' requests (checker)",
    "view_audit": "Can read the whole audit trail (compliance)",
    "operate_system": "Can trigger syncs and operate the back-office",
}
ROLE_PERMISSIONS = {
    "operations": ("view_book", "draft_requests", "operate_system"),
    "supervisors": ("view_book", "approve_requests", "operate_system"),
    "compliance": ("view_book", "view_audit"),
    "admins": ("view_book", "view_audit", "operate_system"),
}


# Administrators manage people and unlock sign-ins in the Django admin.
ADMIN_MODEL_PERMISSIONS = {
    ("auth", "user"): ("view", "add", "change", "delete"),
    ("auth", "group"): ("view",),
    ("axes", "accessattempt"): ("view", "delete"),
    ("axes", "accessfailurelog"): ("view",),
    ("axes", "accesslog"): ("view",),
}


def create_groups(apps, schema_editor):
    # Permissions are normally created after all migrations ran; the groups need them now.
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    role_type, _ = ContentType.objects.get_or_create(app_label="backoffice", model="role")
    permissions = {
        codename: Permission.objects.get_or_create(
            content_type=role_type, codename=codename, defaults={"name": name}
        )[0]
        for codename, name in PERMISSION_NAMES.items()
    }
    for name, codenames in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.add(*(permissions[codename] for codename in codenames))

    admins = Group.objects.get(name="admins")
    for (app_label, model), actions in ADMIN_MODEL_PERMISSIONS.items():
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        for action in actions:
            permission, _ = Permission.objects.get_or_create(
                content_type=content_type,
                codename=f"{action}_{model}",
                defaults={"name": f"Can {action} {model}"},
            )
            admins.permissions.add(permission)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLE_PERMISSIONS).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("axes", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
