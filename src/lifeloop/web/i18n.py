"""The web app's two languages: zh-CN (the default) and English, from Babel/gettext message catalogues.

Templates and views write English msgids (``{{ _("Strategy board") }}``, ``_("...")``); the catalogues under
``web/locale/<language>/LC_MESSAGES/lifeloop.po`` give each its zh_CN and en text and are compiled to ``.mo``
files that ship with the package (`make i18n` extracts, updates and compiles; docs/web.md). The stdlib's
gettext reads them at run time, so nothing but the package's own files is needed. A test checks that every
msgid has a non-empty translation in both catalogues.
"""

from __future__ import annotations

import gettext
from functools import cache
from pathlib import Path

LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "lifeloop"
LANGUAGES = ("zh_CN", "en")
DEFAULT = "zh_CN"
HTML_LANG = {"zh_CN": "zh-CN", "en": "en"}


def language(cookie: str | None) -> str:
    """The page language: the user's choice (cookie), else zh-CN (the bank's language), whatever the browser says."""
    return cookie if cookie in LANGUAGES else DEFAULT


@cache
def translations(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of a language (a missing .mo is an error: the package ships both)."""
    return gettext.translation(DOMAIN, localedir=str(LOCALE_DIR), languages=[lang])


def gettext_for(lang: str):
    """``_`` for one language."""
    return translations(lang).gettext

