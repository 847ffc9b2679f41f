"""The web pages' Jinja2 environments, one per language (gettext catalogues installed; autoescaping on)."""

from __future__ import annotations

from functools import cache
from typing import Any

from lifeloop.review.svg import money, num, pct
from lifeloop.web.i18n import translations


@cache
def environment(lang: str) -> Any:
    """The environment of one language: the web templates, and the report's chart macro (``_svg.html.j2``)."""
    from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined

    env = Environment(loader=ChoiceLoader([PackageLoader("lifeloop", "web/templates"),
                                           PackageLoader("lifeloop", "templates/report")]),
                      autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                      extensions=["jinja2.ext.i18n"])
    env.install_gettext_translations(translations(lang), newstyle=False)
    env.filters.update(num=num, money=money, pct=pct, px=lambda v: f"{float(v):.1f}")
    return env


def page(language: str, template: str, **values: Any) -> str:
    """A page as HTML text, in ``language`` (zh_CN or en)."""
    return environment(language).get_template(template).render(**values)
