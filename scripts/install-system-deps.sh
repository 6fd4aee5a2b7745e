#!/usr/bin/env bash
# Debian packages the test suite needs. Idempotent: installs only what is missing.
# Add a package here (with a comment saying which tests need it), never in a test.
set -euo pipefail
packages=(
  tzdata            # zoneinfo for market hours
  chromium          # tests/e2e: headless browser driven by Playwright (never `playwright install`)
  postgresql        # scripts/postgres.sh: throwaway server for the postgres tests
  maven             # scripts/kafka.sh, spark: resolves jars from Maven Central
  openjdk-17-jre-headless  # runs the Kafka broker (scripts/kafka.sh) and Spark
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
