"""The price of a request answered from the response cache: free by default."""

from decimal import Decimal

from django.db import migrations, models


def field():
    return models.DecimalField(
        decimal_places=9,
        default=Decimal("0"),
        help_text="What a request answered from Switchboard's response cache "
        "costs, instead of its tokens and fees (relay.response_cache). 0: free.",
        max_digits=12,
        verbose_name="$ per cache hit",
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0016_budgets"),
    ]

    operations = [
        migrations.AddField(
            model_name="modelprice", name="cache_hit_usd", field=field()
        ),
        migrations.AddField(
            model_name="pricechange", name="cache_hit_usd", field=field()
        ),
    ]
