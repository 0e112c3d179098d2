import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Identity",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("provider", models.CharField(max_length=32, verbose_name="provider")),
                ("subject", models.CharField(max_length=255, verbose_name="subject (sub)")),
                (
                    "created_at",
                    models.DateTimeField(auto_now_add=True, verbose_name="first sign-in"),
                ),
                (
                    "signed_in_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="last sign-in"),
                ),
                (
                    "groups_synced_at",
                    models.DateTimeField(blank=True, null=True, verbose_name="groups last synced"),
                ),
                (
                    "user",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="identities",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "verbose_name": "sign-in identity",
                "verbose_name_plural": "sign-in identities",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("provider", "subject"), name="identity_unique_sub"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="ProvidedMembership",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("synced_at", models.DateTimeField(verbose_name="last synced")),
                (
                    "group",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="provided_memberships",
                        to="auth.group",
                    ),
                ),
                (
                    "identity",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="memberships",
                        to="sso.identity",
                    ),
                ),
            ],
            options={
                "verbose_name": "group from a provider",
                "verbose_name_plural": "groups from providers",
                "constraints": [
                    models.UniqueConstraint(
                        fields=("identity", "group"), name="membership_unique_group"
                    )
                ],
            },
        ),
    ]
