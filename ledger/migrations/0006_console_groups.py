"""The console's two groups, so they exist right after `migrate`: `support` reads everything
and acts on nothing; `operator` reads everything and may act on credits (`act_on_credits`).
Superusers need neither."""

from django.db import migrations

READ = [
    ("customers", "project"),
    ("customers", "customer"),
    ("customers", "apikey"),
    ("ledger", "creditaccount"),
    ("ledger", "transaction"),
    ("ledger", "ledgerentry"),
    ("ledger", "operatoraction"),
]


def create_groups(apps, schema_editor):
    # Permissions are made after the last migration; these groups need them now.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    view = [
        Permission.objects.get(content_type__app_label=app, codename=f"view_{model}")
        for app, model in READ
    ]
    act = Permission.objects.get(content_type__app_label="ledger", codename="act_on_credits")
    support, _ = Group.objects.get_or_create(name="support")
    support.permissions.add(*view)
    operator, _ = Group.objects.get_or_create(name="operator")
    operator.permissions.add(*view, act)


def remove_groups(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=["support", "operator"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("ledger", "0005_operator_action"),
    ]

    operations = [migrations.RunPython(create_groups, remove_groups)]
