"""The interface's words, one module per area of work (``core``, ``auth``, ``dashboard`` …).

Each module defines ``ZH_CN`` (English message → Chinese) and may define ``EN`` (for
machine codes shown as words, such as error codes). Modules are found by name, so an
area adds its words without touching anyone else's; a message defined twice with two
different translations is a mistake and stops the app at start-up.
"""

from __future__ import annotations

import importlib
import pkgutil

LANGUAGE_TABLES = {"zh_CN": "ZH_CN", "en": "EN"}


def load_catalogues() -> dict[str, dict[str, str]]:
    """Every module's tables merged per language."""
    catalogues: dict[str, dict[str, str]] = {language: {} for language in LANGUAGE_TABLES}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for language, table_name in LANGUAGE_TABLES.items():
            table: dict[str, str] = getattr(module, table_name, {})
            merged = catalogues[language]
            for message, translation in table.items():
                if merged.get(message, translation) != translation:
                    raise ValueError(
                        f"web.messages.{module_info.name} translates {message!r} as "
                        f"{translation!r}, another module as {merged[message]!r}"
                    )
                merged[message] = translation
    return catalogues
