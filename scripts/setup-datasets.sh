#!/usr/bin/env bash
# Installs R's dslabs package from Debian (r-cran-dslabs) and exports the real classification datasets Mnemo's
# classifiers read (`mnemo classify`, docs/classification.md) as CSV files that Mnemo.Classification.Datasets finds by
# name:
#
#   <out>/wdbc.csv   dslabs::brca, the Wisconsin Diagnostic Breast Cancer data (Street, Wolberg and Mangasarian 1993):
#                    569 tumours, 30 features of their cell nuclei (10 measurements, each as mean, standard error and
#                    worst value: radius_mean ... fractal_dim_worst) and the diagnosis (B benign, M malignant)
#
# Usage (as root, for apt-get):  scripts/setup-datasets.sh [out-dir]     (default: data/datasets in the repository)
# Idempotent: packages are not reinstalled and existing non-empty exports are kept (pass FORCE=1 to rewrite them).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/data/datasets}"
mkdir -p "$out"

if ! dpkg-query -W -f='${Status}' r-cran-dslabs 2>/dev/null | grep -q "install ok installed"; then
  if [[ $EUID -ne 0 ]]; then echo "setup-datasets: installing r-cran-dslabs needs root (apt-get)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends r-cran-dslabs
fi

fresh() { [[ "${FORCE:-0}" == 1 || ! -s "$1" ]]; }

if fresh "$out/wdbc.csv"; then
  OUT="$out/wdbc.csv.tmp" Rscript --vanilla -e '
    data(brca, package = "dslabs")
    x <- as.data.frame(brca$x)
    x$diagnosis <- as.character(brca$y)
    write.csv(x, Sys.getenv("OUT"), row.names = FALSE, quote = FALSE)'
  mv "$out/wdbc.csv.tmp" "$out/wdbc.csv"
fi

wc -l "$out"/*.csv
