"""
The staff roles as Django groups, with the model permissions the admin asks
for. The console itself checks roles by group name (accounts/roles.py).
"""

from django.db import migrations

SUPPORT = "support"
FINANCE = "finance"
# Every model of these apps is readable by both roles.
READ_APPS = ("accounts", "audit", "billing", "relay")
# What finance may change in the admin, beyond reading: (app, model, actions).
FINANCE_CHANGES = (
    ("accounts", "tenant", ("change",)),
    ("accounts", "apikey", ("change",)),
    ("billing", "plan", ("add", "change")),
    ("billing", "modelprice", ("add", "change")),
    ("billing", "pricechange", ("add", "change", "delete")),
    ("billing", "redemptionbatch", ("add", "change")),
    ("relay", "channel", ("add", "change", "delete")),
    ("relay", "upstreamkey", ("add", "change", "delete")),
    ("relay", "channelcost", ("add", "change", "delete")),
)


def create_roles(apps, schema_editor):
    # Permissions are normally created after the whole migrate run; create
    # them now so the groups can be given them.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    readable = list(
        Permission.objects.filter(
            content_type__app_label__in=READ_APPS, codename__startswith="view_"
        )
    )
    support, _ = Group.objects.get_or_create(name=SUPPORT)
    support.permissions.add(*readable)

    finance, _ = Group.objects.get_or_create(name=FINANCE)
    finance.permissions.add(*readable)
    for app_label, model, actions in FINANCE_CHANGES:
        finance.permissions.add(
            *Permission.objects.filter(
                content_type__app_label=app_label,
                content_type__model=model,
                codename__in=[f"{action}_{model}" for action in actions],
            )
        )


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(
        name__in=(SUPPORT, FINANCE)
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("accounts", "0002_tenant_suspension_referral"),
        ("audit", "0001_initial"),
        ("billing", "0010_pricechange"),
        ("relay", "0010_channel_costs"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
