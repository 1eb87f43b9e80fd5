"""The console's groups `support` and `operator` (see `ledger.console_groups`)."""

from django.db import migrations

from ledger.console_groups import ensure_console_groups

def create_groups(apps, schema_editor):
    # Permissions are made after the last migration; these groups need them now.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    ensure_console_groups(apps.get_model("auth", "Group"), apps.get_model("auth", "Permission"))


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["support", "operator"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("ledger", "0006_operator_action"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
