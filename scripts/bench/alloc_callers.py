#!/usr/bin/env python3
"""Groups `perf script -F ip,sym` call stacks of allocator calls (scripts/bench/allocs.sh
--callers) by the first three frames that are not the allocator or a collection growing,
and prints the most frequent, per request. Usage: perf script ... | alloc_callers.py N"""

import collections
import re
import sys

# Frames that say how memory was asked for, not who asked.
PLUMBING = re.compile(
    r"(^mi_|^_mi_|__rust_alloc|__rust_realloc|^alloc|alloc_impl|allocate|box_new|new_uninit|RawVec|raw_vec|"
    r"with_capacity|reserve|grow|to_vec|to_owned|clone|^from$|^into$|^new$|default|call_once|get_or_insert|"
    r"try_reserve|extend|push|spec_|collect|copy_from_slice|^fmt$|write_str|write_fmt|format|^insert$|^entry$)"
)


def main():
    requests = float(sys.argv[1])
    counts = collections.Counter()
    total = 0
    for stack in sys.stdin.read().split("\n\n"):
        frames = [line.strip().split(" ", 1)[-1] for line in stack.strip().splitlines() if line.strip()]
        if not frames:
            continue
        total += 1
        picked = []
        for frame in frames[1:]:
            name = re.sub(r"<.*?>", "", frame.replace("(inlined)", "")).strip()
            if not name or PLUMBING.search(name.split("::")[-1]):
                continue
            picked.append(name[:70])
            if len(picked) == 3:
                break
        counts[" < ".join(picked)] += 1
    print(f"{total / requests:.1f} allocations per forwarded request; by caller (per request):")
    for where, n in counts.most_common(40):
        print(f"{n / requests:6.2f}  {where}")


if __name__ == "__main__":
    main()
