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
        # Compile to a side file and keep the old .mo when no message changed: Babel stamps each compile
        # with the time, so an unchanged catalog would otherwise show up as a changed binary in git.
        mo=${po%.po}.mo
        $PYBABEL compile --statistics -i "$po" -o "$mo.new" -l "$language"
        if [ -f "$mo" ] && .venv/bin/python -c '
import sys
from babel.messages.mofile import read_mo
old, new = ({m.id: m.string for m in read_mo(open(path, "rb")) if m.id} for path in sys.argv[1:])
sys.exit(old != new)' "$mo" "$mo.new"; then
            rm "$mo.new"
        else
            mv "$mo.new" "$mo"
        fi
    done
done
