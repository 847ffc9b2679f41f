"""The web app's two catalogues (zh_CN, the default, and en): every message the templates and views use is in
both, translated, and the compiled .mo files the package ships say what the .po files say (`make i18n`)."""

from __future__ import annotations

import configparser

import pytest

from lifeloop.web import i18n

WEB = i18n.LOCALE_DIR.parent


def used_msgids() -> set[str]:
    """What Babel extracts from the web package, with the package's babel.cfg (as `make i18n` does)."""
    from babel.messages.extract import extract_from_dir

    config = configparser.ConfigParser()
    config.read(WEB / "babel.cfg")
    method_map = [(section.split(":", 1)[1].strip(), section.split(":", 1)[0].strip()) for section in config.sections()]
    options_map = {section.split(":", 1)[1].strip(): dict(config[section]) for section in config.sections()}
    return {message for _, _, message, _, _ in extract_from_dir(str(WEB), method_map, options_map) if message}


def catalogue(lang: str):
    from babel.messages.pofile import read_po

    with open(i18n.LOCALE_DIR / lang / "LC_MESSAGES" / f"{i18n.DOMAIN}.po", "rb") as f:
        return read_po(f, locale=lang)


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_the_pages_use_is_translated_in_the_catalogue(lang):
    used = used_msgids()
    assert len(used) > 50
    entries = {m.id: m.string for m in catalogue(lang) if m.id}
    assert sorted(used - set(entries)) == []                       # nothing missing: run `make i18n`
    assert sorted(set(entries) - used) == []                       # nothing left over
    assert sorted(k for k, v in entries.items() if not v.strip()) == []


def test_the_chinese_catalogue_is_chinese():
    entries = {m.id: m.string for m in catalogue("zh_CN") if m.id}
    untranslated = [k for k, v in entries.items() if v == k and any(c.isalpha() for c in k)]
    assert untranslated == []


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_compiled_catalogue_says_what_the_po_file_says(lang):
    compiled = i18n.translations(lang)
    for m in catalogue(lang):
        if m.id:
            assert compiled.gettext(m.id) == m.string, m.id


def test_the_default_language_is_chinese_and_only_known_languages_are_chosen():
    assert i18n.language(None) == i18n.language("fr") == "zh_CN"
    assert i18n.language("en") == "en"
