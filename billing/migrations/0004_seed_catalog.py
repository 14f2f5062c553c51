"""
Seed the catalog with the providers' published list prices (USD per 1M tokens).

An upsert by model: rows that exist get the published prices and limits,
missing rows are created (active). `is_active` of an existing row is left
alone, so a model staff switched off stays off.

Every price here is a whole number of nano-USD per token (at most 3 decimals
per 1M tokens, see billing.money.nano_per_token); none needed rounding.

Prices verified against the sources named next to each group in November
2026. Where a provider changed a price over time, the most recent published
figure is used and the older one is noted.
"""

from decimal import Decimal

from django.db import migrations

# model, input, cached input (cache read), cache write, output,
# context window, max output tokens. None: billed as input.
PRICES = [
    # OpenAI. Sources: "Pricing | OpenAI API" (developers.openai.com/api/docs/
    # pricing) and the model pages "GPT-4.1", "GPT-4.1 mini", "GPT-4.1 nano",
    # "GPT-4o", "GPT-4o mini" (developers.openai.com/api/docs/models/...).
    # OpenAI bills no cache writes: cache_write is None.
    ("gpt-4.1", "2.00", "0.50", None, "8.00", 1_047_576, 32_768),
    ("gpt-4.1-mini", "0.40", "0.10", None, "1.60", 1_047_576, 32_768),
    ("gpt-4.1-nano", "0.10", "0.025", None, "0.40", 1_047_576, 32_768),
    # gpt-4o is the alias of the 2024-08-06 / 2024-11-20 snapshots at
    # $2.50 / $1.25 / $10; the first snapshot, gpt-4o-2024-05-13, was $5 / $15
    # and is not the alias.
    ("gpt-4o", "2.50", "1.25", None, "10.00", 128_000, 16_384),
    ("gpt-4o-mini", "0.15", "0.075", None, "0.60", 128_000, 16_384),
    # Embeddings bill input only. Sources: "text-embedding-3-small" and
    # "text-embedding-3-large" model pages ($0.02 and $0.13 per 1M tokens);
    # 8191-token input limit as in OpenAI's embeddings guide / cookbook.
    # They produce no output tokens, so output is 0 and max output 0
    # (PositiveIntegerField allows 0).
    ("text-embedding-3-small", "0.02", None, None, "0.00", 8_191, 0),
    ("text-embedding-3-large", "0.13", None, None, "0.00", 8_191, 0),
    # Anthropic. Source: "Pricing - Anthropic" (docs.anthropic.com/en/docs/
    # about-claude/pricing, "Model pricing" table): base input, 5-minute cache
    # write, cache hits & refreshes (cache read), output. The 1-hour cache
    # write ($1.60 Haiku, $6 Sonnet) is not modelled. Limits: 200K context,
    # 8192 max output (Anthropic "Models overview", legacy models table).
    # Claude Haiku 3.5: $0.80 / write $1 / read $0.08 / $4.
    ("claude-3-5-haiku-latest", "0.80", "0.08", "1.00", "4.00", 200_000, 8_192),
    ("claude-3-5-haiku-20241022", "0.80", "0.08", "1.00", "4.00", 200_000, 8_192),
    # Claude Sonnet 3.5 (listed as deprecated): $3 / write $3.75 / read $0.30
    # / $15.
    ("claude-3-5-sonnet-latest", "3.00", "0.30", "3.75", "15.00", 200_000, 8_192),
    ("claude-3-5-sonnet-20241022", "3.00", "0.30", "3.75", "15.00", 200_000, 8_192),
    # Google. Source: "Gemini Developer API Pricing | Gemini API" (ai.google.dev/
    # gemini-api/docs/pricing), Standard, paid tier, text / image / video
    # rates; output includes thinking tokens. The context caching price is the
    # cache read; cache storage (per token-hour) is not modelled, and creating
    # an explicit cache is billed as input (cache_write None). Limits: input
    # token limit 1,048,576 and output token limit 65,536 ("Gemini models").
    # Gemini 2.5 Flash: $0.30 / cache $0.03 / $2.50. The cache price was
    # $0.075 at launch and is $0.03 now; audio input ($1.00, cache $0.10) is
    # billed at the text rate here.
    ("gemini-2.5-flash", "0.30", "0.03", None, "2.50", 1_048_576, 65_536),
    # Gemini 2.5 Pro, the prompts <= 200k tokens tier: $1.25 / cache $0.125 /
    # $10. Prompts over 200k tokens cost $2.50 / cache $0.25 / $15 and are
    # billed at this lower tier here. The cache price was $0.31 (<= 200k) at
    # launch and is $0.125 now.
    ("gemini-2.5-pro", "1.25", "0.125", None, "10.00", 1_048_576, 65_536),
]


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
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0003_cache_write")]

    # Reversing leaves the rows: they may already be referenced by usage and
    # 0002 seeded some of them before.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
