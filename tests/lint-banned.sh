#!/usr/bin/env bash
# The functions STYLE.md section 6 bans, looked for in src/ (our small checksrc.pl).
set -u
src=${1:-$(dirname "$0")/../src}
pattern='\b(strcpy|strcat|sprintf|vsprintf|gets|strtok|atoi|sscanf)[[:space:]]*\('
if grep -rnE "$pattern" --include='*.c' --include='*.h' "$src"; then
    echo "lint: banned function used (see STYLE.md section 6)" >&2
    exit 1
fi
exit 0
