#!/bin/sh
# The install steps of the Driftloop image: the Dockerfile runs this script, and so does
# tests/test_image.py in a fresh virtualenv (there is no container engine on the test machines).
#
#   sh docker/install.sh PREFIX     (run from the folder holding pyproject.toml and constraints.txt)
#
# Creates a virtualenv at PREFIX with Driftloop, its `reports` extra (the monitor's Evidently report)
# and their pinned dependencies, compiles every module
# to bytecode (the container's root filesystem is read-only, so nothing can be written later) and
# checks that the command starts.
set -eu
prefix=${1:?usage: install.sh PREFIX}
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet -c constraints.txt ".[reports]"
"$prefix/bin/python" -m compileall -q -j 0 "$prefix/lib" >/dev/null
"$prefix/bin/driftloop" --version
