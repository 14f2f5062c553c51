from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Staff console"

    def ready(self):
        from django.contrib import admin
        from django.utils.translation import gettext_lazy as _

        # The admin and the console share one chrome: name it for the site.
        admin.site.site_header = _("Switchboard staff")
        admin.site.site_title = _("Switchboard staff")
        admin.site.index_title = _("Administration")
