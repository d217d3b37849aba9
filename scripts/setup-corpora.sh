#!/usr/bin/env bash
# Installs the Debian text corpora used by Mnemo's text tasks and exports them as plain UTF-8 files that
# Mnemo.Text.Corpora finds by name ("kjv", "austen"):
#
#   <out>/kjv.txt               King James Bible (Debian bible-kjv / bible-kjv-text), one verse per line,
#                               book/chapter headings and verse numbers removed
#   <out>/austen-<book>.txt     Jane Austen's six novels (Debian r-cran-janeaustenr, an R data package read with
#                               Rscript), one file per novel: sense-sensibility, pride-prejudice, mansfield-park,
#                               emma, northanger-abbey, persuasion; the package's line breaks kept
#   <out>/nt-kjv.tsv            the New Testament verse by verse, "Book C:V<TAB>text", King James Version (bible-kjv)
#   <out>/nt-web.tsv            the same verses in the World English Bible (Debian sword-text-web, read with diatheke),
#                               footnotes removed; a modern translation, so each verse paraphrases its KJV verse
#                               (mnemo seal, docs/retrieval.md)
#
# Usage (as root, for apt-get):  scripts/setup-corpora.sh [out-dir]     (default: data/corpora in the repository)
# Idempotent: packages already installed are not reinstalled and existing non-empty exports are kept
# (pass FORCE=1 to rewrite them). All three texts are in the public domain.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$repo/data/corpora}"
mkdir -p "$out"

need=()
for p in bible-kjv bible-kjv-text r-cran-janeaustenr sword-text-web diatheke; do
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

# New Testament, verse-aligned: KJV from `bible` (a "Book N" heading per chapter, "  V text" per verse) and the WEB from
# diatheke ("Book C:V: text", poetry continued on further lines; footnotes printed as "[C:V …]" so that the words around
# them keep their spaces, then removed). The WEB's roman book numbers and "Revelation of John" are renamed as the KJV's.
if fresh "$out/nt-kjv.tsv"; then
  bible -l1000000 mat1:1-rev22:21 | awk '
    /^[^ ]/ { n = split($0, w, " "); chapter = w[n]; book = substr($0, 1, length($0) - length(chapter) - 1); next }
    /^  [0-9]+ / { sub(/^  /, ""); v = $1; sub(/^[0-9]+ /, ""); printf "%s %s:%s\t%s\n", book, chapter, v, $0 }' > "$out/nt-kjv.tsv.tmp"
  mv "$out/nt-kjv.tsv.tmp" "$out/nt-kjv.tsv"
fi
if fresh "$out/nt-web.tsv"; then
  diatheke -b engWEB2015eb -f plain -o f -k 'Matthew 1:1-Revelation 22:21' | awk '
    function flush() { if (ref != "") { gsub(/ *\[[0-9]+:[0-9]+[^]]*\]/, "", text); gsub(/[ \t]+/, " ", text)
                       sub(/^ /, "", text); sub(/ $/, "", text); printf "%s\t%s\n", ref, text } }
    /^\(engWEB2015eb\)$/ { next }
    match($0, /^[ \t]*[^ \t].* [0-9]+:[0-9]+: /) {
      flush(); ref = substr($0, RSTART, RLENGTH - 2); text = substr($0, RLENGTH + 1); sub(/^[ \t]+/, "", ref)
      sub(/^III /, "3 ", ref); sub(/^II /, "2 ", ref); sub(/^I /, "1 ", ref); sub(/^Revelation of John /, "Revelation ", ref)
      next }
    { text = text " " $0 }
    END { flush() }' > "$out/nt-web.tsv.tmp"
  mv "$out/nt-web.tsv.tmp" "$out/nt-web.tsv"
fi

for f in "$out"/kjv.txt "$out"/austen-*.txt "$out"/nt-*.tsv; do
  iconv -f UTF-8 -t UTF-8 "$f" > /dev/null || { echo "setup-corpora: $f is not valid UTF-8" >&2; exit 1; }
done
wc -c "$out"/kjv.txt "$out"/austen-*.txt "$out"/nt-*.tsv
