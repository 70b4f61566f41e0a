#!/bin/sh
# Steps through a fiber's first switch (switch_in, which calls the naked
# enter_fiber) in gdb (batch mode) and writes the
# transcript the book shows, so that it always matches the code.
#
#   stage-01-asm-fibers/scripts/gdb-walkthrough.sh [OUTPUT]
#
# OUTPUT defaults to stage-01-asm-fibers/scripts/gdb-walkthrough.txt. x86-64
# only: on AArch64, run the program under `qemu-aarch64 -g 1234` and attach
# `gdb-multiarch` with `target remote :1234` to step the same way.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/gdb-walkthrough.txt}
command -v gdb >/dev/null || { echo "gdb is not installed (apt-get install gdb)" >&2; exit 1; }
[ "$(uname -m)" = x86_64 ] || { echo "this script steps the x86-64 switch; see the comment at its top" >&2; exit 1; }

cd "$root"
cargo build -q -p stage-01-asm-fibers --example first_resume
exe=${CARGO_TARGET_DIR:-$root/target}/debug/examples/first_resume

# Naked functions have no debug information, only a symbol whose name ends
# in a hash: look it up first.
enter_fiber=$(gdb -q -nx -batch -ex 'info functions ^fibers::arch::x86_64::enter_fiber::h' "$exe" 2>/dev/null |
    awk '/^0x.*enter_fiber::h/ { print $2 }')
[ -n "$enter_fiber" ] || { echo "no symbol fibers::arch::x86_64::enter_fiber in $exe" >&2; exit 1; }

commands=$(mktemp)
trap 'rm -f "$commands"' EXIT
cat >"$commands" <<GDB
set pagination off
set confirm off
set disassembly-flavor intel
set print symbol on
break '$enter_fiber'
run
echo \n# Stopped in enter_fiber, called by the first switch_in. rdi = arg, rsi = the fiber's saved sp, rdx = where ours goes:\n
info registers rdi rsi rdx rsp
echo \n# The fresh frame at rsi, lowest word first (control words, rbx, rbp, resume address, then data and top for the trampoline):\n
x/6gx \$rsi
echo \n# Step through the save of the resumer's side:\n
display/i \$pc
display/x \$rsp
stepi 6
echo \n# The resumer's suspended frame, lowest word first: compare with the suspended-frame diagram:\n
x/4gx \$rsp
echo \n# Now onto the fiber's stack, and pop its forged frame:\n
stepi
stepi
stepi
stepi
stepi
stepi
stepi
stepi
stepi
echo \n# In the trampoline: one move and two pops put entry's arguments in place, then it calls rbx:\n
stepi 3
info registers rdi rsi rdx rbx
echo \n# The call enters the fiber's root with rsp + 8 a multiple of 16; on top, the return to the ud2:\n
stepi
x/2gx \$rsp
undisplay
continue
GDB

# Addresses are stable from run to run: gdb turns address randomisation off.
gdb -q -nx -batch -x "$commands" "$exe" 2>&1 |
    grep -v -e '^\[Thread debugging' -e '^Using host libthread_db' -e '^\[Inferior 1' \
        -e 'auto-load' -e '^of file ' -e '^Use .info auto-load' >"$out"
echo "wrote $out"
