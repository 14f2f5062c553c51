"""Seed the catalog with OpenAI's published prices (USD per 1M tokens)."""

from decimal import Decimal

from django.db import migrations

PRICES = [
    # model, input, cached input, output, context window, max output
    ("gpt-4.1", "2.00", "0.50", "8.00", 1_047_576, 32_768),
    ("gpt-4.1-mini", "0.40", "0.10", "1.60", 1_047_576, 32_768),
    ("gpt-4.1-nano", "0.10", "0.025", "0.40", 1_047_576, 32_768),
    ("gpt-4o-mini", "0.15", "0.075", "0.60", 128_000, 16_384),
]


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("billing", "ModelPrice")
    for model, input_, cached, output, context, max_output in PRICES:
        ModelPrice.objects.update_or_create(
            model=model,
            defaults={
                "input_per_mtok": Decimal(input_),
                "cached_input_per_mtok": Decimal(cached),
                "output_per_mtok": Decimal(output),
                "context_window": context,
                "max_output_tokens": max_output,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
