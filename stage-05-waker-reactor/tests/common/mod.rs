//! Helpers shared by the behaviour tests.
#![allow(dead_code)]

use runtime::Runtime;

/// Scale a count down under AArch64 or RISC-V emulation (qemu-user is 5-20x slower).
pub fn scaled(count: usize) -> usize {
    if cfg!(any(target_arch = "aarch64", target_arch = "riscv64")) {
        (count / 5).max(1)
    } else {
        count
    }
}

/// One runtime of each flavour, named for assertion messages.
pub fn both_flavours() -> Vec<(&'static str, Runtime)> {
    vec![
        (
            "current_thread",
            Runtime::new().expect("current-thread runtime"),
        ),
        (
            "multi_thread",
            Runtime::builder()
                .multi_thread()
                .worker_threads(2)
                .build()
                .expect("multi-thread runtime"),
        ),
    ]
}
