#!/bin/sh
# SPDX-License-Identifier: MIT
# The CLI end to end with a real interpreter and the build-tree _cds:
# trace, dump, verify, inspect, run (at the base and relocated), exit
# status pass-through, a corrupted and a truncated copy, pycds.yaml
# exclude patterns.  Takes a few seconds.
#   sh cli_roundtrip.sh PYCDS PYTHON WORKDIR [USAGE_MD]
set -u
PYCDS=$1
PYTHON=$2
WORK=$3
USAGE_MD=${4:-}
failures=0

. "$(dirname "$0")/cli_lib.sh"

rm -rf "$WORK"
mkdir -p "$WORK" && cd "$WORK" || exit 1

# trace
"$PYCDS" trace -o heap.lst -- "$PYTHON" -c 'import json, decimal' ||
    fail "trace exited $?"
grep -qx json heap.lst || { fail "json not traced"; show heap.lst; }
grep -qx decimal heap.lst || { fail "decimal not traced"; show heap.lst; }

# dump
"$PYCDS" dump heap.lst -o heap.img 2>dump.err ||
    { fail "dump exited $?"; show dump.err; }
[ -s heap.img ] || { fail "dump wrote no archive"; exit 1; }

# verify
"$PYCDS" verify heap.img >verify.out 2>verify.err ||
    { fail "verify exited $?"; show verify.err; }
grep -Eq '^ok: [0-9]+ modules, [0-9]+ bytes$' verify.out ||
    { fail "verify output"; show verify.out; }

# inspect
"$PYCDS" inspect heap.img >inspect.yaml 2>inspect.err ||
    { fail "inspect exited $?"; show inspect.err; }
for pattern in '^header:' '^fingerprint:' '^totals:' '^modules:' \
    '^- name: json$' '^- name: decimal$' '^  format_version: 8$' \
    '^    code: [1-9]'; do
    grep -q "$pattern" inspect.yaml || fail "inspect: no line $pattern"
done
# every key inspect writes is in docs/usage.md's example report
if [ -n "$USAGE_MD" ] && [ ! -r "$USAGE_MD" ]; then
    fail "cannot read $USAGE_MD (give an absolute path)"
elif [ -n "$USAGE_MD" ]; then
    awk '/^### `pycds inspect`/ { s = 1 } s && /^```yaml/ { y = 1; next }
         y && /^```/ { exit } y' "$USAGE_MD" >doc.yaml
    for key in $(sed -n 's/^[- ]*\([a-z_]*\):.*/\1/p' inspect.yaml |
        sort -u); do
        grep -Eq "(^|[ {])$key:" doc.yaml ||
            fail "inspect writes '$key', docs/usage.md's example has not"
    done
fi
"$PYCDS" inspect --no-modules heap.img >nomod.yaml ||
    fail "inspect --no-modules exited $?"
grep -q '^modules:' nomod.yaml && fail "inspect --no-modules lists modules"
# inspect --json: the same report (every scalar compared as text where the
# interpreter has PyYAML), one JSON object
"$PYCDS" inspect --json heap.img >inspect.json 2>inspect.err ||
    { fail "inspect --json exited $?"; show inspect.err; }
"$PYTHON" - inspect.json inspect.yaml >json.out 2>&1 <<'PY' ||
import json, sys
d = json.load(open(sys.argv[1]))
assert sorted(d) == ['archive', 'fingerprint', 'header', 'modules',
                     'totals'], sorted(d)
assert d['header']['format_version'] == 8, d['header']
names = [m['name'] for m in d['modules']]
assert 'json' in names and 'decimal' in names, names
try:
    import yaml
except ImportError:
    print('no PyYAML: the YAML comparison is skipped')
    raise SystemExit(0)
def text(v):
    if isinstance(v, dict):
        return {k: text(x) for k, x in v.items()}
    if isinstance(v, list):
        return [text(x) for x in v]
    if isinstance(v, bool):
        return 'true' if v else 'false'
    return str(v)
y = yaml.load(open(sys.argv[2]), Loader=yaml.BaseLoader)
assert text(d) == y, 'the JSON and YAML reports differ'
PY
    { fail "inspect --json"; show json.out; }
"$PYCDS" inspect --json --no-modules heap.img >nomod.json ||
    fail "inspect --json --no-modules exited $?"
"$PYTHON" -c 'import json, sys
sys.exit("modules" in json.load(open(sys.argv[1])))' nomod.json ||
    fail "inspect --json --no-modules lists modules"

# run: served from the archive, same output as without it
want=$("$PYTHON" -c 'import json; print(json.dumps({"a": [1, 2.5]}))')
for reloc in "" --relocate; do
    got=$("$PYCDS" run heap.img $reloc -v -- "$PYTHON" -c \
        'import json; print(json.dumps({"a": [1, 2.5]}))' 2>run.err)
    rc=$?
    [ "$rc" -eq 0 ] || fail "run $reloc exited $rc"
    [ "$got" = "$want" ] || fail "run $reloc printed '$got', not '$want'"
    grep -q '^pycds: json: served from archive$' run.err ||
        { fail "run $reloc: json not served"; show run.err; }
    grep -q '^pycds: warning:' run.err &&
        { fail "run $reloc warned"; show run.err; }
done

# run --auto: the first run traces and writes the archive after it exits,
# the second is served
rm -f auto.img
want=$("$PYTHON" -c 'import json; print(json.dumps([3]))')
got=$("$PYCDS" run auto.img --auto -- "$PYTHON" -c \
    'import json; print(json.dumps([3]))' 2>auto.err)
[ "$got" = "$want" ] || { fail "run --auto printed '$got'"; show auto.err; }
[ -s auto.err ] && { fail "run --auto: stderr not empty"; show auto.err; }
i=0
while [ ! -s auto.img ] || ls auto.img.auto-* >/dev/null 2>&1; do
    i=$((i + 1))
    [ "$i" -le 600 ] || { fail "run --auto: no archive after 60 s"; break; }
    sleep 0.1
done
"$PYCDS" verify auto.img >/dev/null || fail "run --auto: archive invalid"
got=$("$PYCDS" run auto.img --auto -v -- "$PYTHON" -c \
    'import json; print(json.dumps([3]))' 2>auto2.err)
[ "$got" = "$want" ] || fail "run --auto (2nd) printed '$got'"
grep -q '^pycds: json: served from archive$' auto2.err ||
    { fail "run --auto (2nd): json not served"; show auto2.err; }

# stats: the program as run has it, then the summary on stderr
got=$("$PYCDS" stats heap.img -- "$PYTHON" -c \
    'import json, decimal; print(json.dumps([4])); raise SystemExit(5)' \
    2>stats.err)
rc=$?
[ "$rc" -eq 5 ] || fail "stats: exit status $rc, expected 5"
[ "$got" = "[4]" ] || fail "stats printed '$got'"
for pattern in '^pycds: stats: archive .*heap.img, [0-9]+ modules, ' \
    '^pycds: stats: served ([2-9]|[1-9][0-9]+), not in the archive [0-9]+, stale 0, failed 0$' \
    '^pycds: stats: loading [0-9.]+ ms, find_spec [0-9.]+ ms$' \
    '^pycds: stats: archive pages [1-9][0-9]* resident of [1-9][0-9]*: [0-9]+ the file.s \([0-9]+ %\), [0-9]+ copied$'
do
    grep -Eq "$pattern" stats.err ||
        { fail "stats: no line $pattern"; show stats.err; }
done
[ "$(grep -c '^pycds: stats:' stats.err)" -eq 4 ] ||
    { fail "stats: not 4 summary lines"; show stats.err; }

# run: exec, so the program's exit status is its own
"$PYCDS" run heap.img -- "$PYTHON" -c 'raise SystemExit(7)'
rc=$?
[ "$rc" -eq 7 ] || fail "run: exit status $rc, expected 7"

# run: a missing archive is a warning, not a failure (the archive is a
# cache)
got=$("$PYCDS" run missing.img -- "$PYTHON" -c 'print(2)' 2>missing.err)
rc=$?
[ "$rc" -eq 0 ] && [ "$got" = 2 ] ||
    { fail "run missing.img: exit $rc, output '$got'"; show missing.err; }

# a corrupted segment: verify names it, exit 1, one line
cp heap.img bad.img
byte=$(od -An -tu1 -j5000 -N1 bad.img | tr -d ' ')
printf "\\$(printf %o $((byte ^ 255)))" |
    dd of=bad.img bs=1 seek=5000 conv=notrunc 2>/dev/null
"$PYCDS" verify bad.img >bad.out 2>bad.err
rc=$?
[ "$rc" -eq 1 ] || fail "verify bad.img exited $rc, expected 1"
[ -s bad.out ] && fail "verify bad.img wrote to stdout"
[ "$(wc -l <bad.err)" -eq 1 ] &&
    grep -q '^pycds: bad.img: .*(checksum mismatch)$' bad.err ||
    { fail "verify bad.img message"; show bad.err; }

# a corrupted string pool (its first string), found from inspect's report
pool=$(awk '/^  pool:/ { p = 1; next }
            p && /^    offset:/ { o = $2 }
            p && /^    strings:/ { n = $2 }
            p && !/^    / { exit }
            END { if (n > 0) print o }' inspect.yaml)
if [ -n "$pool" ]; then
    cp heap.img pool.img
    byte=$(od -An -tu1 -j$((pool + 40)) -N1 pool.img | tr -d ' ')
    printf "\\$(printf %o $((byte ^ 255)))" |
        dd of=pool.img bs=1 seek=$((pool + 40)) conv=notrunc 2>/dev/null
    "$PYCDS" verify pool.img 2>pool.err
    rc=$?
    [ "$rc" -eq 1 ] && grep -q '(checksum mismatch)$' pool.err ||
        { fail "verify pool.img exited $rc"; show pool.err; }
fi

# a truncated copy
head -c 4096 heap.img >short.img
"$PYCDS" verify short.img 2>short.err
rc=$?
[ "$rc" -eq 1 ] && grep -q '^pycds: short.img: .*(corrupt)$' short.err ||
    { fail "verify short.img exited $rc"; show short.err; }

# the corrupted copy still runs the program, normally
got=$("$PYCDS" run bad.img -- "$PYTHON" -c 'import json; print(3)' \
    2>/dev/null)
[ "$got" = 3 ] || fail "run bad.img printed '$got'"

# pycds.yaml: defaults and exclude patterns
cat >pycds.yaml <<EOF
archive: conf.img
list: heap.lst
python: $PYTHON
exclude:
  - decimal
  - "_py*"
EOF
"$PYCDS" dump 2>conf.err ||
    { fail "dump with pycds.yaml exited $?"; show conf.err; }
"$PYCDS" verify >/dev/null || fail "verify with pycds.yaml exited $?"
"$PYCDS" inspect conf.img >conf.yaml || fail "inspect conf.img exited $?"
grep -q '^- name: json$' conf.yaml || fail "pycds.yaml: json left out"
grep -q '^- name: decimal$' conf.yaml && fail "pycds.yaml: decimal kept"
rm -f pycds.yaml

# a list with lines the hook skips (not UTF-8, a NUL byte): through the
# include/exclude filter they are reported as the hook reports them,
# with the user's list and line numbers, not the temporary file's
printf 'json\n# a comment may hold \377\n\377\376\ndecimal\njs\000on\njson.decoder\n@ 1 f /src/a # b.py\n' \
    >odd.lst
"$PYCDS" dump odd.lst -o odd.img 2>odd.err ||
    { fail "dump odd.lst exited $?"; show odd.err; }
printf 'exclude: decimal\n' >filter.yaml
"$PYCDS" dump odd.lst -o oddf.img --config filter.yaml 2>oddf.err ||
    { fail "dump odd.lst with filter.yaml exited $?"; show oddf.err; }
for err in odd.err oddf.err; do
    grep -qx "pycds: dump: $WORK/odd.lst:3: skipping a name that is not UTF-8" \
        "$err" &&
        grep -qx "pycds: dump: $WORK/odd.lst:5: skipping a line with a NUL byte" \
            "$err" ||
        { fail "$err: bad lines not reported with their list and number"
          show "$err"; }
    [ "$(grep -c ':[0-9]*: skipping' "$err")" -eq 2 ] ||
        { fail "$err: not exactly two lines skipped"; show "$err"; }
    # an '@' record of code that ran is no name: never skipped as one
    grep -q '@ 1' "$err" && { fail "$err: the @ record taken for a name"
                              show "$err"; }
done
grep -q 'pycds-list\.' oddf.err &&
    { fail "a message names the temporary list"; show oddf.err; }
"$PYCDS" inspect oddf.img >oddf.yaml || fail "inspect oddf.img exited $?"
grep -q '^- name: json.decoder$' oddf.yaml ||
    fail "odd.lst with filter.yaml: json.decoder left out"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s); files in $WORK" >&2
    exit 1
fi
echo "cli_roundtrip: ok"
