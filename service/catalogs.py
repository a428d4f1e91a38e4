"""The gettext catalogs' upkeep: extract the words from the code, update fr and en, compile.

`debrief catalogs update` after changing any text a person reads; `debrief catalogs check`
(and a test) fails when a message is missing from a catalog, has no translation in either
language, or a compiled catalog is older than its source.
"""

from __future__ import annotations

import io
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from service.i18n import DOMAIN, LANGUAGES, LOCALES, TRANSLATIONS_DIR

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ("service", "workers")
METHODS = [
    ("**/templates/**.html", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {"**/templates/**.html": {"trimmed": "true", "silent": "false"}}
# flask_babel's _() and friends in pages; i18n.translate(lang, msg) and N_() in pure code.
KEYWORDS = {
    "_": None, "gettext": None, "ngettext": (1, 2), "lazy_gettext": None, "_l": None,
    "translate": (2,), "translate_plural": (2, 3), "N_": None,
}


def po_path(lang: str) -> Path:
    """The source catalog of a language."""
    return TRANSLATIONS_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def extract() -> Catalog:
    """Every message the code and templates mark for translation."""
    template = Catalog(project="Debrief", version="1", charset="utf-8")
    for source in SOURCES:
        for filename, lineno, message, comments, context in extract_from_dir(
                ROOT / source, METHODS, options_map=OPTIONS, keywords=KEYWORDS, comment_tags=("TRANSLATORS:",),
                strip_comment_tags=True):
            template.add(message, None, [(f"{source}/{filename}", lineno)], auto_comments=comments, context=context)
    return template


def _read(lang: str) -> Catalog:
    path = po_path(lang)
    if not path.exists():
        return Catalog(locale=LOCALES[lang], domain=DOMAIN, charset="utf-8")
    with path.open("rb") as handle:
        return read_po(handle, locale=LOCALES[lang], domain=DOMAIN)


def update() -> None:
    """Bring fr and en up to date with the code (new messages empty, gone ones dropped) and compile them."""
    template = extract()
    for lang in LANGUAGES:
        catalog = _read(lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        catalog.project, catalog.version = "Debrief", "1"
        if lang == "en":
            # English is the language the code is written in: its catalog says the same words.
            for message in catalog:
                if message.id and not any(message.string if isinstance(message.string, tuple) else (message.string,)):
                    message.string = message.id if isinstance(message.id, str) else tuple(message.id)
        path = po_path(lang)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=True, include_lineno=False)
        with path.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog)


def _message_id(message) -> tuple[str, ...]:
    return (message.id,) if isinstance(message.id, str) else tuple(message.id)


def problems() -> list[str]:
    """What is wrong with the catalogs: missing, untranslated, fuzzy, stale or uncompiled messages."""
    found: list[str] = []
    wanted = {(m.context, _message_id(m)) for m in extract() if m.id}
    for lang in LANGUAGES:
        catalog = _read(lang)
        have = {(m.context, _message_id(m)) for m in catalog if m.id}
        found += [f"{lang}: not in the catalog: {key[1][0]!r}" for key in sorted(wanted - have, key=str)]
        found += [f"{lang}: no longer in the code: {key[1][0]!r}" for key in sorted(have - wanted, key=str)]
        for message in catalog:
            if not message.id:
                continue
            strings = message.string if isinstance(message.string, tuple) else (message.string,)
            if not all(strings):
                found.append(f"{lang}: no translation for {_message_id(message)[0]!r}")
            if message.fuzzy:
                found.append(f"{lang}: fuzzy translation for {_message_id(message)[0]!r}")
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        mo = po_path(lang).with_suffix(".mo")
        if not mo.exists() or mo.read_bytes() != compiled.getvalue():
            found.append(f"{lang}: {mo.name} is not compiled from {po_path(lang).name} (run `debrief catalogs update`)")
    return found
