#!/usr/bin/env bash
# The main job: installs the packages, builds bitscout, runs the bundled demo campaign
# (configs/fmnist-cnn.json: 60 configurations quantized and measured by the real engine) with two
# local agents over loopback (one per core of a small machine), and prints its Pareto front.
# Rerunning resumes the same campaign from demo.db (delete it to start over).
# Usage: tools/demo.sh [extra `bitscout search` flags, e.g. --budget 100]
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"${JOBS:-2}" --target bitscout bitscout-agent >/dev/null
rc=0
build/bitscout search configs/fmnist-cnn.json --db demo.db --bind tcp://127.0.0.1:5555 \
  --local-agents 2 "$@" || rc=$?
if [ $rc -eq 130 ]; then
  echo "interrupted: run tools/demo.sh again to resume"
  exit 130
fi
[ $rc -eq 0 ] || exit $rc
echo
echo "Pareto front (bitscout query pareto --db demo.db):"
build/bitscout query pareto --db demo.db
