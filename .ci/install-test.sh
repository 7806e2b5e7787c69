#!/usr/bin/env bash
# CI helper (root, throwaway Debian 12): the service tests that change the system or need
# systemd's tools. Run from the repo root: bash .ci/install-test.sh
#   - installs systemd-analyze if missing (unit verify + security exposure test)
#   - shellchecks install.sh when shellcheck is there
#   - runs install.sh for real (install twice, repair, uninstall, purge)
# Uses $KIOSK_PYTEST (default: pytest on PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if ! command -v systemd-analyze >/dev/null; then
    echo "install-test: installing systemd (for systemd-analyze)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends systemd >/dev/null
fi
if command -v shellcheck >/dev/null; then
    shellcheck install.sh .ci/install-test.sh
fi
KIOSK_RUN_INSTALL_TEST=1 ${KIOSK_PYTEST:-pytest} -q -p no:cacheprovider \
    tests/service/test_unit_file.py tests/integration/test_install_sh.py
