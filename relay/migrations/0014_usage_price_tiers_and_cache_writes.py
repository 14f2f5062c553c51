"""
The new price fields on channel costs (billing.models.Prices), and on usage
records the buckets and prices they add: 1-hour cache writes, cached image
input, and the threshold when long-context prices applied.

Before, image tokens read from the cache were billed at the cached input
price: records that may hold some get that price as their cached image
input price, so that their breakdown still adds up to what they cost.
"""

import django.core.validators
from django.db import migrations, models
from django.db.models import F


def keep_past_costs(apps, schema_editor):
    UsageRecord = apps.get_model("relay", "UsageRecord")
    UsageRecord.objects.filter(image_input_tokens__gt=0, cached_tokens__gt=0).update(
        cached_image_input_price=F("cached_input_price")
    )


class Migration(migrations.Migration):
    dependencies = [
        ("relay", "0013_refusal_counts_idempotency"),
    ]

    operations = [
        migrations.AddField(
            model_name="channelcost",
            name="cache_write_1h_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text='Prompt tokens written to the cache for an hour (Anthropic\'s "ttl": "1h", 2x input); the field above is the 5-minute write. Empty: billed as the 5-minute write.',
                max_digits=12,
                null=True,
                verbose_name="1-hour cache write $/1M",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="cached_image_input_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text="Image tokens in the prompt read from the provider's cache (GPT Image models). Empty: billed as cached input.",
                max_digits=12,
                null=True,
                verbose_name="cached image input $/1M",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="long_cache_write_1h_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text="Empty: billed as the long-context 5-minute write.",
                max_digits=12,
                null=True,
                verbose_name="long-context 1-hour cache write $/1M",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="long_cache_write_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text="The 5-minute write. Empty: billed as long-context input.",
                max_digits=12,
                null=True,
                verbose_name="long-context cache write $/1M",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="long_cached_input_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text="Empty: billed as long-context input.",
                max_digits=12,
                null=True,
                verbose_name="long-context cached input $/1M",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="long_context_threshold",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Prompts of more tokens than this are billed at the long-context prices below. Empty: one price whatever the prompt's length.",
                null=True,
                validators=[django.core.validators.MinValueValidator(1)],
                verbose_name="long context above (prompt tokens)",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="long_input_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text="Required with a threshold.",
                max_digits=12,
                null=True,
                verbose_name="long-context input $/1M",
            ),
        ),
        migrations.AddField(
            model_name="channelcost",
            name="long_output_per_mtok",
            field=models.DecimalField(
                blank=True,
                decimal_places=3,
                help_text="Required with a threshold.",
                max_digits=12,
                null=True,
                verbose_name="long-context output $/1M",
            ),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="cache_write_1h_price",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="cache_write_1h_tokens",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="cached_image_input_price",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="cached_image_input_tokens",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="long_context_threshold",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.RunPython(keep_past_costs, migrations.RunPython.noop),
    ]
