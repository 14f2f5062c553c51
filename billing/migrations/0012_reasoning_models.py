"""
Mark the models that reason, and seed the reasoning models customers' coding
agents ask for (Codex CLI defaults to the GPT-5 family, Claude Code to the
Claude 4.5 family). Upsert by model like 0004; `is_active` of an existing row
is left alone.

Prices verified in November 2026 against "Pricing | OpenAI API"
(developers.openai.com/api/docs/pricing) and Anthropic's "Pricing" page
(docs.claude.com/en/docs/about-claude/pricing; cache write is the 5-minute
write, 1.25x input). Every figure is a whole number of nano-USD per token.
"""

from decimal import Decimal

from django.db import migrations, models

# model, input, cached input (cache read), cache write, output,
# context window, max output tokens. None: billed as input.
PRICES = [
    ("gpt-5", "1.25", "0.125", None, "10.00", 400_000, 128_000),
    ("gpt-5-mini", "0.25", "0.025", None, "2.00", 400_000, 128_000),
    ("gpt-5-nano", "0.05", "0.005", None, "0.40", 400_000, 128_000),
    ("gpt-5-codex", "1.25", "0.125", None, "10.00", 400_000, 128_000),
    ("o3", "2.00", "0.50", None, "8.00", 200_000, 100_000),
    ("o4-mini", "1.10", "0.275", None, "4.40", 200_000, 100_000),
    ("claude-sonnet-4-5", "3.00", "0.30", "3.75", "15.00", 200_000, 64_000),
    ("claude-haiku-4-5", "1.00", "0.10", "1.25", "5.00", 200_000, 64_000),
    ("claude-opus-4-5", "5.00", "0.50", "6.25", "25.00", 200_000, 64_000),
]
# Seeded before, and reasoning models too (Gemini 2.5 thinks by default).
ALSO_REASONING = ["gemini-2.5-flash", "gemini-2.5-pro"]


def _usd(value):
    return None if value is None else Decimal(value)


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("billing", "ModelPrice")
    for model, input_, cached, write, output, context, max_output in PRICES:
        ModelPrice.objects.update_or_create(
            model=model,
            defaults={
                "input_per_mtok": Decimal(input_),
                "cached_input_per_mtok": _usd(cached),
                "cache_write_per_mtok": _usd(write),
                "output_per_mtok": Decimal(output),
                "context_window": context,
                "max_output_tokens": max_output,
                "reasoning": True,
            },
        )
    ModelPrice.objects.filter(model__in=ALSO_REASONING).update(reasoning=True)


class Migration(migrations.Migration):
    dependencies = [("billing", "0011_reconciliation_runs")]

    operations = [
        migrations.AddField(
            model_name="modelprice",
            name="reasoning",
            field=models.BooleanField(
                default=False,
                help_text="The model reasons: reasoning settings (effort, "
                "thinking) are passed on when a request is translated between "
                "formats; other models never see them.",
            ),
        ),
        migrations.RunPython(seed, migrations.RunPython.noop),
    ]
