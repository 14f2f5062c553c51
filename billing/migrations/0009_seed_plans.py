from decimal import Decimal

from django.db import migrations

PLANS = [
    ("standard", Decimal("1.0000"), "Catalog prices."),
    ("volume", Decimal("0.8500"), "15% off every catalog price."),
]


def seed(apps, schema_editor):
    Plan = apps.get_model("billing", "Plan")
    for name, multiplier, description in PLANS:
        Plan.objects.get_or_create(
            name=name, defaults={"multiplier": multiplier, "description": description}
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0008_payments_promo_plans_codes")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
