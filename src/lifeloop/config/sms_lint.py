"""Marketing SMS lint (营销短信检查): the signature, the opt-out phrase and no inducing words.

Pure checks on a script template's text, run by ``lifeloop.strategy.checks.check_structure`` for
every marketing script of the channels ``contact_policy.yaml`` names under ``marketing_sms``. The
template is checked as written (variables unrendered): a forbidden word inside a variable's value,
such as a product's name, is the product catalogue's responsibility.
"""

from __future__ import annotations

from lifeloop.config.contact_policy import SIGNATURE, MarketingSms


def _without(text: str, phrases: list[str]) -> str:
    """``text`` in lower case with every allowed phrase blanked out (a disclosure is not an inducement)."""
    out = text.lower()
    for phrase in sorted(phrases, key=len, reverse=True):
        out = out.replace(phrase.lower(), " ")
    return out


def lint(text: str, language: str, rules: MarketingSms) -> list[str]:
    """What one marketing SMS template lacks or must not say: one message per violation, each with the fix."""
    out: list[str] = []
    if rules.signature is not None:
        if rules.signature not in text:
            out.append(f"no sender signature {rules.signature}: start the message with {rules.signature}")
    elif not SIGNATURE.search(text):
        out.append("no sender signature in 【...】: start the message with the bank's signature, e.g. "
                   "【{{ bank_name }}】")
    phrases = rules.opt_out.get(language, [])  # type: ignore[call-overload]
    if not any(p.lower() in text.lower() for p in phrases):
        out.append("no opt-out phrase: end the message with " + " or ".join(repr(p) for p in phrases))
    plain = _without(text, rules.allowed_phrases)
    for word in rules.forbidden_words:
        if word.lower() in plain:
            out.append(f"forbidden inducing word {word!r} (marketing may not promise principal or returns): "
                       "remove it and describe the product's risk and return objectively")
    return out
