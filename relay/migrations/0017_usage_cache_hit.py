"""
Cache hits in the usage log (relay.response_cache): their source, what they
would have cost without the cache, and the cache hit price that channel
costs inherit from billing.models.Prices.
"""

from decimal import Decimal

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        # The lead's merge point: 0015 and 0016 both follow 0014.
        ("relay", "0015_usage_cost_end_user_tags"),
        ("relay", "0016_usage_routed_from"),
        ("billing", "0017_cache_hit_price"),
    ]

    operations = [
        migrations.AddField(
            model_name="channelcost",
            name="cache_hit_usd",
            field=models.DecimalField(
                decimal_places=9,
                default=Decimal("0"),
                help_text="What a request answered from Switchboard's response "
                "cache costs, instead of its tokens and fees "
                "(relay.response_cache). 0: free.",
                max_digits=12,
                verbose_name="$ per cache hit",
            ),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="uncached_cost",
            field=models.BigIntegerField(
                blank=True,
                help_text="Cache hits: nano-USD the answer would have cost at the "
                "model's prices (the plan's multiplier applied), had it not come "
                "from the cache.",
                null=True,
            ),
        ),
        migrations.AlterField(
            model_name="usagerecord",
            name="usage_source",
            field=models.CharField(
                choices=[
                    ("reported", "Reported by upstream"),
                    ("estimated", "Estimated"),
                    ("none", "No usage"),
                    ("cache", "Response cache"),
                ],
                max_length=16,
            ),
        ),
    ]
