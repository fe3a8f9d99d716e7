#!/bin/sh
# Smoke test for examples/scheduling: part 1 awaits "Hello!" (1 s) then
# "Hi!" (2 s): about 3 s; part 2 runs both as tasks: about 2 s. The timings
# are read from the HH:MM:SS.uuuuuu stamps the example prints.
. "$(dirname "$0")/lib.sh"

run_example "$1"

# The text of each line, without its time stamp.
sed 's/^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{6\}  //' "$OUT" >"$_tmp.text"
expect_lines "$_tmp.text" <<'END'
Part 1: awaiting coroutines one after the other (about 3 s)
started
"Hello!" scheduled for execution
Hello!
"Hi!" scheduled for execution
Hi!
Done.
Part 2: running them concurrently as tasks (about 2 s)
started
"Hello!" scheduled for execution
"Hi!" scheduled for execution
Hello!
Hi!
Done.
END
expect_nlines 14 "$_tmp.text"
[ "$(grep -c '^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]\{6\}  ' "$OUT")" -eq 12 ] ||
    fail "expected 12 lines stamped HH:MM:SS.uuuuuu"

# "PART WHAT SECONDS": when Hello!, Hi! and Done. came, after "started".
awk '/^Part / { part++; next }
     {
         split(substr($0, 1, 15), hms, ":")
         t = hms[1] * 3600 + hms[2] * 60 + hms[3]
         text = substr($0, 18)
         if (text == "started") start = t
         if (t < start) t += 86400           # past midnight
         if (text == "Hello!" || text == "Hi!" || text == "Done.")
             printf "%d %s %.3f\n", part, text, t - start
     }' "$OUT" >"$_tmp.times"

at() { awk -v p="$1" -v w="$2" '$1 == p && $2 == w { print $3 }' "$_tmp.times"; }
in_range 'part 1: "Hello!"' "$(at 1 Hello!)" 0.8 2.5
in_range 'part 1: "Hi!"' "$(at 1 Hi!)" 2.7 5.0
in_range 'part 1: "Done."' "$(at 1 Done.)" 2.7 5.0
in_range 'part 2: "Hello!"' "$(at 2 Hello!)" 0.8 2.5
in_range 'part 2: "Hi!"' "$(at 2 Hi!)" 1.7 2.9
in_range 'part 2: "Done."' "$(at 2 Done.)" 1.7 2.9
expect_elapsed 4.5 9.0
pass
