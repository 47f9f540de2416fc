#!/usr/bin/env bash
# The gettext catalogs of the messages students read, with Babel: extract the messages from the code into
# i18n/<domain>.pot, merge them into each language's .po (new ones untranslated, changed ones fuzzy), and
# compile the .mo files the code loads. Run it after changing a message; then translate what it reports
# as untranslated or fuzzy in <package>/locale/<lang>/LC_MESSAGES/<domain>.po and run it again.
# tests/test_translations.py fails while a catalog is out of date or incomplete.
set -euo pipefail
cd "$(dirname "$0")/.."
PYBABEL=.venv/bin/pybabel
for domain in course_utils autograder; do
    pot=i18n/$domain.pot
    $PYBABEL extract -F i18n/babel.cfg -k _ -k N_ -k gettext_in:2 --no-location --sort-output \
        --project=dl-course --copyright-holder="" -o "$pot" "$domain" 2>&1 | grep -v "^extracting messages from" || true
    sed -i '/^"POT-Creation-Date: /d' "$pot"  # the same messages, the same file
    for language in zh; do
        po=$domain/locale/$language/LC_MESSAGES/$domain.po
        if [ -f "$po" ]; then
            $PYBABEL update -D "$domain" -i "$pot" -d "$domain/locale" -l "$language" --no-wrap --ignore-obsolete
        else
            $PYBABEL init -D "$domain" -i "$pot" -d "$domain/locale" -l "$language" --no-wrap
        fi
        sed -i '/^"POT-Creation-Date: /d; /^"PO-Revision-Date: /d' "$po"
        $PYBABEL compile --statistics -D "$domain" -d "$domain/locale" -l "$language"
    done
done
