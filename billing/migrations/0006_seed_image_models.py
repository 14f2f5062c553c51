"""
Seed the image models' published prices: GPT Image 1 (billed by tokens),
DALL·E 3 and DALL·E 2 (billed per image).

An upsert by model, like 0004: existing rows get the published prices,
missing rows are created (active); `is_active` of an existing row is left
alone.

Sources, checked in November 2026:
- "GPT Image 1" model page (developers.openai.com/api/docs/models/gpt-image-1):
  text input $5.00, cached text input $1.25, image input $10.00 (cached image
  input $2.50, not modelled), output $40.00 per 1M tokens. Its per-image
  figures ($0.011 low 1024x1024 ... $0.25 high 1536x1024) are these output
  token counts at $40/1M, rounded: low 272 / 408 / 400, medium
  1056 / 1584 / 1568, high 4160 / 6240 / 6208 tokens for 1024x1024 /
  1024x1536 / 1536x1024 (e.g. 272 x $40/1M = $0.01088). The tokens table
  sizes holds only: the upstream's reported usage is what is charged.
- DALL·E 3 and DALL·E 2, as OpenAI's pricing page listed them while they
  were offered (their model pages now show no prices): per image, standard 1024x1024 $0.040, standard 1024x1792 and 1792x1024 $0.080,
  HD 1024x1024 $0.080, HD 1024x1792 and 1792x1024 $0.120; DALL·E 2 (standard
  only) 256x256 $0.016, 512x512 $0.018, 1024x1024 $0.020. Billed per image
  only: their token prices are 0.

OpenAI's model pages list all three as retired from its own API (DALL·E on
2026-05-12, GPT Image 1 on 2026-10-23); other vendors and Azure deployments
may still serve them under these prices.
"""

from decimal import Decimal

from django.db import migrations

GPT_IMAGE_1_TOKENS = {
    "low:1024x1024": 272,
    "low:1024x1536": 408,
    "low:1536x1024": 400,
    "medium:1024x1024": 1056,
    "medium:1024x1536": 1584,
    "medium:1536x1024": 1568,
    "high:1024x1024": 4160,
    "high:1024x1536": 6240,
    "high:1536x1024": 6208,
}
DALL_E_3_PRICES = {
    "standard:1024x1024": "0.040",
    "standard:1024x1792": "0.080",
    "standard:1792x1024": "0.080",
    "hd:1024x1024": "0.080",
    "hd:1024x1792": "0.120",
    "hd:1792x1024": "0.120",
}
DALL_E_2_PRICES = {
    "standard:256x256": "0.016",
    "standard:512x512": "0.018",
    "standard:1024x1024": "0.020",
}

# model: input, cached input, image input, output (USD per 1M tokens),
# output tokens per image, USD per image.
MODELS = {
    "gpt-image-1": ("5.00", "1.25", "10.00", "40.00", GPT_IMAGE_1_TOKENS, {}),
    "dall-e-3": ("0", None, None, "0", {}, DALL_E_3_PRICES),
    "dall-e-2": ("0", None, None, "0", {}, DALL_E_2_PRICES),
}


def _usd(value):
    return None if value is None else Decimal(value)


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("billing", "ModelPrice")
    for model, row in MODELS.items():
        input_, cached, image_input, output, output_tokens, per_image = row
        ModelPrice.objects.update_or_create(
            model=model,
            defaults={
                "input_per_mtok": Decimal(input_),
                "cached_input_per_mtok": _usd(cached),
                "cache_write_per_mtok": None,
                "image_input_per_mtok": _usd(image_input),
                "output_per_mtok": Decimal(output),
                "image_output_tokens": output_tokens,
                "image_prices": per_image,
                # Image models produce no text: no output token limit applies.
                "max_output_tokens": 0,
            },
        )


class Migration(migrations.Migration):
    dependencies = [("billing", "0005_image_prices")]

    # Reversing leaves the rows: usage records may already name them.
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
