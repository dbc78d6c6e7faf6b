#!/usr/bin/env bash
# The paper preset on an offline GPU machine, as one command (benchmarks/gpu/paper_preset.py says
# what it measures). Run from anywhere; the repository is found from this file's place.
#
#   bash benchmarks/gpu/paper_preset.sh OUT_DIR [MINUTES] [extra arguments of paper_preset.py]
#
# The machine needs Python 3.12 with JAX for its GPU. Keras and what paper_repro needs beyond JAX
# travel as wheels in .whl/ at the repository root (git-ignored), fetched beforehand on a machine
# with a network by benchmarks/gpu/fetch_wheels.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:?usage: paper_preset.sh OUT_DIR [MINUTES] [args...]}
minutes=${2:-7}
shift $(( $# >= 2 ? 2 : 1 ))
wheels=${WHEELS:-.whl}   # WHEELS=none: use the packages already installed
if [ "$wheels" != none ] && compgen -G "$wheels/*.whl" > /dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/paper-repro-site "$wheels"/*.whl
  export PYTHONPATH="/tmp/paper-repro-site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 TF_CPP_MIN_LOG_LEVEL=3
# the GPU may take what it needs, not 75% of its memory up front
export XLA_PYTHON_CLIENT_PREALLOCATE=false
python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
exec python3 -m benchmarks.gpu.paper_preset --out "$out" --minutes "$minutes" "$@"
