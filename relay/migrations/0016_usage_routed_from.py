"""
The `auto` model (relay.auto): the tier list staff set for it, and on usage
records whether `auto` chose the model.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("relay", "0014_usage_price_tiers_and_cache_writes"),
    ]

    operations = [
        migrations.CreateModel(
            name="AutoTiers",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "tiers",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Model names, cheapest first, e.g. "
                        '["gpt-4.1-nano", "gpt-4.1-mini", "gpt-4.1"]. Empty: no '
                        "auto model.",
                    ),
                ),
                ("updated_at", models.DateTimeField(auto_now=True)),
            ],
            options={
                "verbose_name": "auto model tiers",
                "verbose_name_plural": "auto model tiers",
            },
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="routed_from",
            field=models.CharField(blank=True, max_length=16),
        ),
    ]
