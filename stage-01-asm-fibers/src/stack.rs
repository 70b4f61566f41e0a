//! A fiber's stack: memory from `mmap` with a guard page below it.
//!
//! Stacks grow down on all three architectures this course targets, so the guard
//! page sits at the *low* end. Running off the bottom of the usable region
//! touches the guard page, which faults instead of silently overwriting
//! whatever memory happens to lie below.
//!
//! ```text
//!   high addresses
//!   +---------------------------+ <- top()     (16-byte aligned; first push lands below it)
//!   |                           |
//!   |   usable region           |    usable_size() bytes, read + write,
//!   |   (grows downwards)       |    committed lazily by the kernel page by page
//!   |                           |
//!   +---------------------------+ <- bottom()
//!   |   guard page: PROT_NONE   |    any access faults (SIGSEGV)
//!   +---------------------------+ <- base of the mapping
//!   low addresses
//! ```

use std::io;
use std::ops::Range;
use std::ptr::NonNull;

use crate::overflow::{self, GuardRegistration};

/// A stack for one fiber: a private anonymous mapping whose lowest page is a
/// `PROT_NONE` guard page. The mapping is returned to the kernel on drop.
#[derive(Debug)]
pub struct Stack {
    /// Start of the whole mapping, which is also the start of the guard page.
    base: NonNull<u8>,
    /// Length of the whole mapping: guard page plus usable region.
    mapped_len: usize,
    /// Length of the guard page (one page).
    guard_len: usize,
    /// The guard page's entry in the registry the overflow handler searches.
    registration: Option<GuardRegistration>,
}

impl Stack {
    /// The usable size `Fiber::new` asks for. Memory is only committed when a
    /// page is first touched, so a generous default costs address space, not RAM.
    pub const DEFAULT_SIZE: usize = 256 * 1024;

    /// Maps a stack with at least `usable_size` usable bytes (rounded up to
    /// whole pages, at least one page) and a guard page below them, and
    /// enters the guard page in the registry the overflow handler searches.
    pub fn new(usable_size: usize) -> io::Result<Stack> {
        let mut stack = Self::map_with_guard_page(usable_size)?;
        overflow::prepare_thread();
        stack.registration = Some(overflow::register_guard(stack.guard()));
        Ok(stack)
    }

    // ANCHOR: map_with_guard_page
    /// The mapping of `new`: `usable_size` bytes rounded up to whole pages
    /// (at least one), read + write, with one `PROT_NONE` page below them.
    fn map_with_guard_page(usable_size: usize) -> io::Result<Stack> {
        // ANCHOR: lab_1_4_guard
        let page = page_size();
        let usable = usable_size
            .max(1)
            .checked_next_multiple_of(page)
            .ok_or_else(|| too_large(usable_size))?;
        let mapped_len = usable
            .checked_add(page)
            .ok_or_else(|| too_large(usable_size))?;

        // SAFETY: an anonymous private mapping at an address of the kernel's
        // choosing touches no existing memory; the result is checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                mapped_len,
                libc::PROT_READ | libc::PROT_WRITE,
                // NORESERVE: pages are committed when touched, so ten thousand
                // mostly idle stacks do not reserve swap for their full size.
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // Constructed now so that the mapping is unmapped if mprotect fails.
        let stack = Stack {
            base: NonNull::new(base.cast()).ok_or_else(io::Error::last_os_error)?,
            mapped_len,
            guard_len: page,
            registration: None,
        };
        // SAFETY: the first page lies inside the mapping just created, which
        // nothing else refers to yet.
        if unsafe { libc::mprotect(base, page, libc::PROT_NONE) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(stack)
        // ANCHOR_END: lab_1_4_guard
    }
    // ANCHOR_END: map_with_guard_page

    /// One past the highest usable byte. Page aligned, hence 16-byte aligned,
    /// as all three ABIs require of a stack pointer.
    pub fn top(&self) -> *mut u8 {
        // SAFETY: base + mapped_len is one past the end of our own mapping.
        unsafe { self.base.as_ptr().add(self.mapped_len) }
    }

    /// The lowest usable byte, just above the guard page.
    pub fn bottom(&self) -> *mut u8 {
        // SAFETY: the guard page lies inside our own mapping.
        unsafe { self.base.as_ptr().add(self.guard_len) }
    }

    /// How many bytes lie between `bottom()` and `top()`.
    pub fn usable_size(&self) -> usize {
        self.mapped_len - self.guard_len
    }

    /// The addresses of the guard page: a fault in here is a stack overflow.
    pub fn guard(&self) -> Range<usize> {
        let start = self.base.as_ptr() as usize;
        start..start + self.guard_len
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Leave the registry before the pages can be mapped again for
        // something else, whose faults must not look like an overflow.
        drop(self.registration.take());
        // SAFETY: we own the mapping, and a Stack is only dropped once nothing
        // runs on it any more (Fiber guarantees this).
        let result = unsafe { libc::munmap(self.base.as_ptr().cast(), self.mapped_len) };
        debug_assert_eq!(result, 0, "munmap of a fiber stack failed");
    }
}

/// The size of a page, as the kernel reports it (4 KiB on most machines,
/// 16 or 64 KiB on some AArch64 kernels).
pub fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

fn too_large(requested: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a stack of {requested} bytes is larger than the address space"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_is_rounded_up_to_whole_pages() {
        let stack = Stack::new(1).unwrap();
        assert_eq!(stack.usable_size(), page_size());
        let stack = Stack::new(page_size() + 1).unwrap();
        assert_eq!(stack.usable_size(), 2 * page_size());
    }

    #[test]
    fn top_is_16_byte_aligned_and_above_the_guard_page() {
        let stack = Stack::new(64 * 1024).unwrap();
        assert_eq!(stack.top() as usize % 16, 0);
        assert_eq!(stack.guard().end, stack.bottom() as usize);
        assert_eq!(
            stack.top() as usize - stack.bottom() as usize,
            stack.usable_size()
        );
    }

    #[test]
    fn usable_region_is_writable_from_bottom_to_top() {
        let stack = Stack::new(16 * 1024).unwrap();
        // SAFETY: both bytes lie inside the usable region we own.
        unsafe {
            stack.bottom().write(1);
            stack.top().sub(1).write(2);
            assert_eq!(stack.bottom().read() + stack.top().sub(1).read(), 3);
        }
    }

    /// The permissions of the mapping that contains `address`, as
    /// `/proc/self/maps` lists them (`rw-p`, `---p`, ...).
    fn permissions_at(address: usize) -> String {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for line in maps.lines() {
            let mut fields = line.split_whitespace();
            let range = fields.next().unwrap();
            let permissions = fields.next().unwrap();
            let (start, end) = range.split_once('-').unwrap();
            let start = usize::from_str_radix(start, 16).unwrap();
            let end = usize::from_str_radix(end, 16).unwrap();
            if (start..end).contains(&address) {
                return permissions.to_string();
            }
        }
        "unmapped".to_string()
    }

    #[test]
    fn the_page_below_the_usable_region_is_a_guard_page_no_code_may_touch() {
        let stack = Stack::new(16 * 1024).unwrap();
        let guard = stack.guard();
        assert_eq!(guard.len(), page_size(), "the guard is one page");
        assert_eq!(guard.end, stack.bottom() as usize, "right below bottom()");
        let below = permissions_at(guard.start);
        assert!(
            below.starts_with("---"),
            "the page at {:#x} below bottom() is mapped {below:?}; a guard page must be \
             PROT_NONE (---p) so that running off the stack faults",
            guard.start
        );
        let usable = permissions_at(stack.bottom() as usize);
        assert!(
            usable.starts_with("rw"),
            "bottom() {:#x} is mapped {usable:?}, expected read + write",
            stack.bottom() as usize
        );
    }

    #[test]
    fn an_impossible_size_is_an_error_not_a_panic() {
        let error = Stack::new(usize::MAX).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}
