from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_key_max_in_flight"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="cache_ttl",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Keep this key's deterministic answers (temperature 0 or "
                "a seed) this long and answer repeats from them "
                "(relay.response_cache). Empty or 0: only requests that ask with "
                "x-switchboard-cache.",
                null=True,
                verbose_name="response cache TTL (seconds)",
            ),
        ),
    ]
