# shellcheck shell=bash
# The apt mirror this machine is configured with, for builds that fetch
# Debian packages (hack/live/build.sh, hack/image/build-debian12.sh).
# Source it; it defines functions only and changes nothing.
#
# Nothing is hard-coded: a machine behind a local mirror builds from that
# mirror, and the mirror may be a dated snapshot (keep apt's
# Check-Valid-Until off where a Release file is checked).

# host_sources prints this machine's "deb" entries as one-line sources.list
# lines. Reads deb822 /etc/apt/sources.list.d/*.sources (Types, URIs,
# Suites, Components, Signed-By when it is a file, Enabled) and one-line
# /etc/apt/sources.list and /etc/apt/sources.list.d/*.list entries.
host_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
    {
      types = uris = suites = comps = signed = ""; enabled = "yes"
      for (i = 1; i <= NF; i++) {
        line = $i
        if (line ~ /^[ \t]*#/) continue
        if (match(line, /^[A-Za-z0-9-]+:/)) {
          key = tolower(substr(line, 1, RLENGTH - 1)); val = substr(line, RLENGTH + 1)
          gsub(/^[ \t]+|[ \t]+$/, "", val)
          if (key == "types") types = val
          else if (key == "uris") uris = val
          else if (key == "suites") suites = val
          else if (key == "components") comps = val
          else if (key == "signed-by") signed = val
          else if (key == "enabled") enabled = tolower(val)
        }
      }
      if (enabled == "no") next
      isdeb = 0; n = split(types, T, /[ \t]+/)
      for (j = 1; j <= n; j++) if (T[j] == "deb") isdeb = 1
      if (!isdeb || uris == "" || suites == "") next
      opt = (signed != "" && signed ~ /^\//) ? "[signed-by=" signed "] " : ""
      nu = split(uris, U, /[ \t]+/); ns = split(suites, S, /[ \t]+/)
      for (a = 1; a <= nu; a++) for (b = 1; b <= ns; b++) print "deb " opt U[a] " " S[b] " " comps
    }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    sed -e 's/#.*//' "$f" | awk '$1 == "deb" { print }'
  done
}

# pick_sources [SUITE] prints the host entries of SUITE, SUITE-updates and
# SUITE-security (SUITE/updates too), without duplicates. SUITE defaults to
# $suite.
pick_sources() {
  local s="${1:-${suite:?pick_sources: no suite given}}"
  host_sources | awk -v s="$s" '{
    i = 2
    if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
    su = $(i + 1)
    if (su == s || su == s "-updates" || su == s "-security" || su == s "/updates") print
  }' | awk '!seen[$0]++'
}

# has_suite SUITE < LINES succeeds when one of the one-line entries on
# stdin is for SUITE itself (not only its -updates or -security).
has_suite() {
  awk -v s="$1" '{ for (i = 1; i <= NF; i++) if ($i == s) f = 1 } END { exit !f }'
}
