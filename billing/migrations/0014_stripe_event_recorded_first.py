from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("billing", "0013_workers"),
    ]

    operations = [
        # Events recorded before this migration were applied in the
        # transaction that recorded them.
        migrations.AddField(
            model_name="stripeevent",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received, not applied yet"),
                    ("processed", "Applied"),
                    ("failed", "Could not be applied"),
                ],
                db_index=True,
                default="processed",
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="stripeevent",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received, not applied yet"),
                    ("processed", "Applied"),
                    ("failed", "Could not be applied"),
                ],
                db_index=True,
                default="received",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="stripeevent",
            name="payload",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="stripeevent",
            name="error",
            field=models.CharField(blank=True, max_length=300),
        ),
        migrations.AddField(
            model_name="stripeevent",
            name="processed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
    ]
