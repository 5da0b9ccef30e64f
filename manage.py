#!/usr/bin/env python
import os
import sys

DEFAULT_SETTINGS = "marketplace.settings"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", DEFAULT_SETTINGS)
    if (
        os.environ["DJANGO_SETTINGS_MODULE"] == DEFAULT_SETTINGS
        and not os.environ.get("DJANGO_SECRET_KEY")
        and "DJANGO_DEBUG" not in os.environ
    ):
        # A developer's shell with nothing set (`manage.py makemigrations`):
        # the local development mode, said out loud. The settings still refuse
        # to start without a secret key when DJANGO_DEBUG is off, and the
        # serving processes (asgi, wsgi, celery) never come through here.
        os.environ["DJANGO_DEBUG"] = "true"
        print(
            "manage.py: DJANGO_SECRET_KEY is not set, so this runs in local development mode "
            "(DJANGO_DEBUG=true). Production sets DJANGO_SECRET_KEY; see .env.example.",
            file=sys.stderr,
        )
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 - read the settings now
    except ImproperlyConfigured as exc:
        # Django would hide this behind "Models aren't loaded yet".
        sys.exit(f"manage.py: {exc}")
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
