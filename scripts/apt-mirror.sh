#!/usr/bin/env bash
# Prints the apt line(s) for `<codename>-backports` on the Debian mirror this machine already uses, so a
# machine behind its own mirror or proxy gets backports from there too. Writes nothing.
#
#   bash scripts/apt-mirror.sh bookworm            # reads /etc/apt/sources.list and sources.list.d/
#   bash scripts/apt-mirror.sh bookworm /some/etc  # reads /some/etc/sources.list and sources.list.d/ (tests)
#
# The mirror is every URI that serves the release itself (suite exactly <codename>) with type `deb`:
#   - deb822 files (sources.list.d/*.sources): stanzas with `Types:`, `URIs:` (one or more), `Suites:`,
#     and optionally `Signed-By:` (a keyring path is carried over) and `Enabled: no` (skipped);
#   - one-line files (sources.list, sources.list.d/*.list): `deb [options] URI suite components...`
#     (the options, e.g. signed-by, are carried over; deb-src and comments are skipped).
# Security mirrors (suite <codename>-security, or a URI whose path ends in -security) are skipped.
# Output: one `deb [options] URI <codename>-backports main` line per distinct mirror URI, in file order.
# Exit status 1 (and no output) when no mirror is found.
set -u

codename=${1:?usage: apt-mirror.sh CODENAME [APT_ETC_DIR]}
etc=${2:-/etc/apt}

files=()
[ -f "$etc/sources.list" ] && files+=("$etc/sources.list")
for f in "$etc"/sources.list.d/*.list "$etc"/sources.list.d/*.sources; do
  [ -f "$f" ] && files+=("$f")
done
[ ${#files[@]} -gt 0 ] || exit 1

out=$(
  for f in "${files[@]}"; do
    case "$f" in
      *.sources) fmt=deb822 ;;
      *) fmt=oneline ;;
    esac
    awk -v codename="$codename" -v fmt="$fmt" '
      function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t\r]+$/, "", s); return s }
      function has_word(list, w,    n, i, a) { n = split(list, a, /[ \t]+/); for (i = 1; i <= n; i++) if (a[i] == w) return 1; return 0 }
      function is_security(uri) { sub(/\/+$/, "", uri); return uri ~ /-security$/ }
      function emit(opts, uri) {
        if (is_security(uri) || uri ~ /^cdrom:/) return
        print "deb " (opts != "" ? opts " " : "") uri " " codename "-backports main"
      }
      function flush_stanza(    n, i, a, opts) {
        if (types != "" && has_word(types, "deb") && has_word(suites, codename) && tolower(enabled) != "no") {
          opts = (signedby != "" && signedby !~ /[ \t]/) ? "[signed-by=" signedby "]" : ""
          n = split(uris, a, /[ \t]+/)
          for (i = 1; i <= n; i++) if (a[i] != "") emit(opts, a[i])
        }
        types = ""; uris = ""; suites = ""; signedby = ""; enabled = ""; last = ""
      }
      fmt == "deb822" {
        line = $0
        if (line ~ /^[ \t]*#/) next
        if (trim(line) == "") { flush_stanza(); next }
        if (line ~ /^[ \t]/) { if (last == "signed-by") signedby = signedby " " trim(line); next }  # continuation
        i = index(line, ":")
        if (i == 0) next
        key = tolower(trim(substr(line, 1, i - 1))); val = trim(substr(line, i + 1)); last = key
        if (key == "types") types = val
        else if (key == "uris") uris = val
        else if (key == "suites") suites = val
        else if (key == "signed-by") signedby = val
        else if (key == "enabled") enabled = val
        next
      }
      fmt == "oneline" {
        line = $0
        sub(/#.*/, "", line)
        line = trim(line)
        if (line !~ /^deb[ \t]/) next
        line = trim(substr(line, 4))
        opts = ""
        if (substr(line, 1, 1) == "[") {
          j = index(line, "]")
          if (j == 0) next
          opts = substr(line, 1, j); line = trim(substr(line, j + 1))
        }
        n = split(line, w, /[ \t]+/)
        if (n >= 2 && w[2] == codename) emit(opts, w[1])
        next
      }
      END { if (fmt == "deb822") flush_stanza() }
    ' "$f"
  done | awk '{ k = $0; sub(/ [^ ]+ [^ ]+$/, "", k); if (!(k in seen)) { seen[k] = 1; print } }'
)
[ -n "$out" ] || exit 1
printf '%s\n' "$out"
