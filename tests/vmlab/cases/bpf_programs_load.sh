# lab: requires=hvtel timeout=60
# Every BPF program variant hvtel ships loads (passes this kernel's verifier) and attaches, so a verifier
# regression on any supported distro kernel fails CI. `hvtel selftest --json` loads and attaches each
# variant on its own and reports loaded/attached/skipped/reason per program.
require_bin HVTEL

"$HVTEL" selftest --json > "$LAB_OUT/selftest.json" 2> /tmp/selftest.err ||
  echo "note: hvtel selftest exited $?"
S=$LAB_OUT/selftest.json
n=$(jq 'length' "$S") || { cat "$S" /tmp/selftest.err; fail "selftest output is not JSON"; }
check_gt "number of program variants" "$n" 0
# On the lab kernels every hook hvtel knows exists (kvm_amd, openvswitch, fentry, kprobes): nothing may be
# skipped, and everything must load and attach.
# "attached" implies loaded; older selftest output also carried "loaded", which must then be true.
jq -r '.[] | if .attached == true and .skipped != true and (.loaded == true or (has("loaded") | not))
  then "ok:   \(.object)/\(.program) (\(.attach)) loaded+attached"
  else "FAIL: \(.object)/\(.program) (\(.attach)): loaded=\(.loaded) attached=\(.attached) skipped=\(.skipped)"
  end' "$S" > /tmp/progs.txt
cat /tmp/progs.txt
grep -q '^FAIL' /tmp/progs.txt && LAB_FAILED=1
# A failed load's verifier log is what a developer needs: print each failure's reason in full.
if [ "$LAB_FAILED" != 0 ]; then
  jq -r '.[] | select(.attached != true or .skipped == true or .loaded == false) |
    "--- \(.object)/\(.program) (\(.attach))\n\(.reason)"' "$S"
fi
finish
