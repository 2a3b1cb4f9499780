#!/usr/bin/env bash
# Validate and lint template.yaml, build it into .aws-sam/build, then check the built layer's layout
# and serve one sample API event from the built artifacts alone. Exits non-zero on any failure.
#
# The SAM CLI pins boto3 and pydantic to versions that conflict with the application's own, so it
# lives in its own virtual environment (.venv-sam at the repository root), created on first use and
# reused afterwards. `sam build` needs python3.11 on PATH (the functions' runtime) and pip access to
# PyPI for the layer's requirements; no Docker and no AWS credentials are needed.
#
# Environment:
#   PYTHON       interpreter for the SAM venv and the build (default: python3.11)
#   SAM_VENV     where the SAM CLI is installed (default: <repo>/.venv-sam)
set -euo pipefail

SAM_CLI_VERSION="1.170.0"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3.11}"
sam_venv="${SAM_VENV:-${repo_root}/.venv-sam}"
sam="${sam_venv}/bin/sam"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}"

step() { printf '==> %s\n' "$*"; }
fail() { printf 'sam-check: %s\n' "$*" >&2; exit 1; }

command -v "${python}" >/dev/null || fail "${python} not found on PATH (sam build needs the functions' runtime)"

installed_version() { "${sam}" --version 2>/dev/null | sed -n 's/^SAM CLI, version //p'; }

if [[ ! -x "${sam}" || "$(installed_version)" != "${SAM_CLI_VERSION}" ]]; then
    step "installing aws-sam-cli ${SAM_CLI_VERSION} into ${sam_venv}"
    "${python}" -m venv "${sam_venv}"
    "${sam_venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
        "aws-sam-cli==${SAM_CLI_VERSION}"
    [[ "$(installed_version)" == "${SAM_CLI_VERSION}" ]] || fail "aws-sam-cli ${SAM_CLI_VERSION} did not install"
fi

cd "${repo_root}"

step "sam validate --lint"
"${sam}" validate --lint --template-file template.yaml

step "sam build"
"${sam}" build --template-file template.yaml

step "checking the build output"
build_dir="${repo_root}/.aws-sam/build"
layer_dir="${build_dir}/PortwardenLayer/python"
[[ -f "${layer_dir}/portwarden/__init__.py" ]] \
    || fail "the built layer has no python/portwarden/__init__.py (is ContentUri pointing at the package's parent?)"
[[ ! -e "${layer_dir}/python" ]] \
    || fail "the built layer nests python/python/: ContentUri must hold the package directly"
[[ -d "${layer_dir}/pydantic" ]] \
    || fail "the built layer lacks its requirements (python/pydantic is missing)"
[[ -f "${build_dir}/ApiFunction/app.py" ]] || fail "the built ApiFunction has no app.py"
# Lambda cannot write bytecode under /opt: the layer ships it (layers/portwarden/Makefile).
for module in portwarden/runtime/wiring pydantic/main aws_lambda_powertools/logging/logger; do
    compgen -G "${layer_dir}/$(dirname "${module}")/__pycache__/$(basename "${module}").cpython-311.pyc" >/dev/null \
        || fail "the built layer has no bytecode for ${module}.py"
done

# Serve one sample event from the built artifacts alone (-I -S: no site-packages, no repo on the
# path), as Lambda would with the layer under /opt/python: a dependency missing from the layer's
# requirements fails here rather than after a deploy.
step "smoke-invoking the built ApiFunction with events/api/get-health.json"
POWERTOOLS_TRACE_DISABLED=true POWERTOOLS_METRICS_DISABLED=true LOG_LEVEL=WARNING \
    "${python}" -I -S -B -W ignore - "${layer_dir}" "${build_dir}/ApiFunction" "${repo_root}/events/api/get-health.json" <<'PY' >/dev/null \
    || fail "the built ApiFunction could not serve GET /health"
import json, sys
layer, function, event_file = sys.argv[1:4]
sys.path[:0] = [function, layer]

class Context:
    function_name = "sam-check"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:sam-check"
    aws_request_id = "sam-check"

import app
with open(event_file) as handle:
    response = app.handler(json.load(handle), Context())
assert app.__file__.startswith(function), app.__file__
assert response["statusCode"] == 200, response
assert json.loads(response["body"])["status"] == "ok", response
PY

step "SAM template valid, linted and built"
