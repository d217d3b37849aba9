#!/usr/bin/env bash
# Installs R (Debian r-base-core, whose `datasets` package ships the series) and exports the real time series Mnemo's
# forecasting reads (`mnemo forecast`, docs/forecasting.md) as CSV files that Mnemo.Forecasting.SeriesFiles finds by name:
#
#   <out>/eustockmarkets.csv   R's EuStockMarkets: daily closing prices of the DAX, SMI, CAC and FTSE indices,
#                              1991-1998 (1,860 business days; columns DAX, SMI, CAC, FTSE)
#
# Usage (as root, for apt-get):  scripts/setup-series.sh [out-dir]     (default: data/series in the repository)
# Idempotent: R is not reinstalled and existing non-empty exports are kept (pass FORCE=1 to rewrite them).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/data/series}"
mkdir -p "$out"

if ! dpkg-query -W -f='${Status}' r-base-core 2>/dev/null | grep -q "install ok installed"; then
  if [[ $EUID -ne 0 ]]; then echo "setup-series: installing r-base-core needs root (apt-get)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends r-base-core
fi

fresh() { [[ "${FORCE:-0}" == 1 || ! -s "$1" ]]; }

if fresh "$out/eustockmarkets.csv"; then
  OUT="$out/eustockmarkets.csv.tmp" Rscript --vanilla -e '
    x <- as.data.frame(datasets::EuStockMarkets)
    write.csv(x, Sys.getenv("OUT"), row.names = FALSE, quote = FALSE)'
  mv "$out/eustockmarkets.csv.tmp" "$out/eustockmarkets.csv"
fi

wc -l "$out"/*.csv
