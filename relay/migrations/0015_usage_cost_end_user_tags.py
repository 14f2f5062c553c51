"""
The end user and the tags a request names (OpenAI's `user` and `metadata`,
Anthropic's metadata.user_id) on its usage record, to filter usage by.
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("relay", "0014_usage_price_tiers_and_cache_writes"),
    ]

    operations = [
        migrations.AddField(
            model_name="usagerecord",
            name="end_user",
            field=models.CharField(blank=True, max_length=256),
        ),
        migrations.AddField(
            model_name="usagerecord",
            name="tags",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddIndex(
            model_name="usagerecord",
            index=models.Index(
                condition=models.Q(("end_user", ""), _negated=True),
                fields=["tenant", "end_user", "-created_at"],
                name="usage_end_user",
            ),
        ),
    ]
