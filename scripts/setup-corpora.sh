#!/usr/bin/env bash
# Installs the Debian text corpora used by Mnemo's text tasks and exports them as plain UTF-8 files that
# Mnemo.Text.Corpora finds by name ("kjv", "austen"):
#
#   <out>/kjv.txt               King James Bible (Debian bible-kjv / bible-kjv-text), one verse per line,
#                               book/chapter headings and verse numbers removed
#   <out>/austen-<book>.txt     Jane Austen's six novels (Debian r-cran-janeaustenr, an R data package read with
#                               Rscript), one file per novel: sense-sensibility, pride-prejudice, mansfield-park,
#                               emma, northanger-abbey, persuasion; the package's line breaks kept
#
# Usage (as root, for apt-get):  scripts/setup-corpora.sh [out-dir]     (default: data/corpora in the repository)
# Idempotent: packages already installed are not reinstalled and existing non-empty exports are kept
# (pass FORCE=1 to rewrite them). Both texts are in the public domain.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/data/corpora}"
mkdir -p "$out"

need=()
for p in bible-kjv bible-kjv-text r-cran-janeaustenr; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  if [[ $EUID -ne 0 ]]; then echo "setup-corpora: installing ${need[*]} needs root (apt-get)" >&2; exit 1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}"
fi

fresh() { [[ "${FORCE:-0}" == 1 || ! -s "$1" ]]; }

# KJV: the `bible` reader prints "Book N" headings and "  V text" verse lines; a huge line width keeps each verse
# on one line. Verse lines are indented ("  1 In the beginning …"); headings are not ("1 Samuel 1"). Keep the
# verse text only: 31 102 verses.
if fresh "$out/kjv.txt"; then
  bible -l1000000 gen1:1-rev22:21 | sed -n 's/^ \+[0-9]\+ //p' > "$out/kjv.txt.tmp"
  mv "$out/kjv.txt.tmp" "$out/kjv.txt"
fi

# Austen: austen_books() is a data frame of (text, book); write each novel's lines as UTF-8.
if [[ "${FORCE:-0}" == 1 || $(ls "$out"/austen-*.txt 2>/dev/null | wc -l) -lt 6 ]]; then
  OUT="$out" Rscript --vanilla -e '
    library(janeaustenr)
    b <- austen_books()
    slug <- function(s) gsub("-+", "-", gsub("[^a-z]+", "-", gsub("&", "", tolower(s))))
    for (name in levels(b$book)) {
      f <- file.path(Sys.getenv("OUT"), paste0("austen-", slug(name), ".txt"))
      con <- file(f, open = "w", encoding = "UTF-8")
      writeLines(enc2utf8(as.character(b$text[b$book == name])), con)
      close(con)
    }'
fi

for f in "$out"/kjv.txt "$out"/austen-*.txt; do
  iconv -f UTF-8 -t UTF-8 "$f" > /dev/null || { echo "setup-corpora: $f is not valid UTF-8" >&2; exit 1; }
done
wc -c "$out"/kjv.txt "$out"/austen-*.txt
