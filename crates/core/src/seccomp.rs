//! The seccomp filter of the level B session (bubblewrap's `--seccomp`): the session
//! keyring syscalls fail, and so does typing into the terminal (`TIOCSTI`, `TIOCLINUX`),
//! which lets the session keep the terminal (job control, window size) instead of a new
//! session that needs a signal-forwarding parent.
//!
//! Keeping the terminal means keeping clp's process group, and `kill(0, sig)` signals
//! every member of it, clp included, even from inside the sandbox's pid namespace (as a
//! normal user, clp has the session's uid). clp must outlive the session to hold aside what
//! it planted, so `kill` with pid 0 fails too; every other target of `kill` is resolved in
//! the session's own pid namespace and never reaches clp.
//!
//! Built with `seccompiler`; other architectures' syscalls (i386 `int 0x80`) kill the
//! process, and x32 syscall numbers fail.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// What the filter refuses, for `clp show` and the docs.
pub const REFUSED: &str = "keyctl, add_key, request_key (the session keyring), the \
     TIOCSTI and TIOCLINUX ioctls (typing into the terminal) and kill(0, ...) (signalling \
     clp's process group) fail with EPERM";

/// The x32 ABI marks its syscall numbers with this bit (x86_64 only).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// The filter as bubblewrap reads it from a descriptor: the raw `sock_filter` array.
pub fn program() -> Vec<u8> {
    // `c_ulong` is `u64` on the 64-bit targets clp builds for.
    let arg_is = |arg: u8, value: u64| {
        SeccompRule::new(vec![SeccompCondition::new(
            arg,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            value,
        )
        .expect("a valid condition")])
        .expect("a valid rule")
    };
    let rules = [
        (libc::SYS_keyctl, vec![]),
        (libc::SYS_add_key, vec![]),
        (libc::SYS_request_key, vec![]),
        (
            libc::SYS_ioctl,
            vec![arg_is(1, libc::TIOCSTI), arg_is(1, libc::TIOCLINUX)],
        ),
        // kill(0, sig): the caller's process group, where clp is.
        (libc::SYS_kill, vec![arg_is(0, 0)]),
    ];
    let arch = target_arch();
    let filter = SeccompFilter::new(
        rules.into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .expect("a valid filter");
    let mut bpf: BpfProgram = filter.try_into().expect("a filter compiles");
    if cfg!(target_arch = "x86_64") {
        // Before seccompiler's program (its jumps are relative): x32 numbers fail.
        let prefix = [
            stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
            jump(
                libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
                X32_SYSCALL_BIT,
                0,
                1,
            ),
            stmt(
                libc::BPF_RET | libc::BPF_K,
                libc::SECCOMP_RET_ERRNO | libc::ENOSYS as u32,
            ),
        ];
        bpf.splice(0..0, prefix);
    }
    let mut out = Vec::with_capacity(bpf.len() * 8);
    for f in &bpf {
        out.extend_from_slice(&f.code.to_ne_bytes());
        out.push(f.jt);
        out.push(f.jf);
        out.extend_from_slice(&f.k.to_ne_bytes());
    }
    out
}

fn stmt(code: u32, k: u32) -> seccompiler::sock_filter {
    jump(code, k, 0, 0)
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> seccompiler::sock_filter {
    seccompiler::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

fn target_arch() -> TargetArch {
    if cfg!(target_arch = "aarch64") {
        TargetArch::aarch64
    } else if cfg!(target_arch = "riscv64") {
        TargetArch::riscv64
    } else {
        TargetArch::x86_64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_program_is_whole_instructions() {
        let p = super::program();
        assert!(!p.is_empty() && p.len().is_multiple_of(8));
        assert!(p.len() / 8 < 4096);
    }
}
