"""
Invitations belong to accounts (they make memberships); the model began in
the portal app. Only Django's idea of which app owns it changes: the table
stays portal_invitation, so no row moves.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_key_limits"),
        ("portal", "0001_invitation"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="Invitation",
                    fields=[
                        (
                            "id",
                            models.BigAutoField(
                                auto_created=True,
                                primary_key=True,
                                serialize=False,
                                verbose_name="ID",
                            ),
                        ),
                        ("email", models.EmailField(max_length=254)),
                        (
                            "role",
                            models.CharField(
                                choices=[("owner", "Owner"), ("member", "Member")],
                                default="member",
                                max_length=16,
                            ),
                        ),
                        (
                            "token_digest",
                            models.CharField(max_length=64, unique=True),
                        ),
                        (
                            "created_at",
                            models.DateTimeField(default=django.utils.timezone.now),
                        ),
                        ("accepted_at", models.DateTimeField(blank=True, null=True)),
                        (
                            "invited_by",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "tenant",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="invitations",
                                to="accounts.tenant",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "portal_invitation",
                        "constraints": [
                            models.UniqueConstraint(
                                condition=models.Q(("accepted_at__isnull", True)),
                                fields=("tenant", "email"),
                                name="unique_pending_invitation",
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
