from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_invitation_from_portal"),
    ]

    operations = [
        migrations.AddField(
            model_name="apikey",
            name="max_in_flight",
            field=models.PositiveIntegerField(
                blank=True,
                help_text="Requests served at once with this key, on every server "
                "together; more get 429 concurrency_limit_exceeded. Empty: no limit.",
                null=True,
                verbose_name="max requests in flight",
            ),
        ),
    ]
