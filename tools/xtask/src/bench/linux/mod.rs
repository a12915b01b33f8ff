//! The Linux guest `cargo xtask bench` compares exo with: Debian's kernel and busybox
//! (`packages`), an initramfs holding them with `linux-peer` (`initramfs`), and booting it
//! under the same QEMU command line as exo (`guest`).

pub mod guest;
pub mod initramfs;
pub mod packages;
