//! Many datagrams per system call on a connected UDP socket: `recvmmsg` and
//! `sendmmsg` on Linux behind a safe interface, one `recv`/`send` a call
//! elsewhere (or where the kernel refuses them, `ENOSYS`).
//!
//! Both are non-blocking: they return `WouldBlock` when nothing can be read
//! or sent now, so they fit `tokio::net::UdpSocket::try_io`.

use std::io;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};

/// Datagrams moved per call at most.
pub const BATCH: usize = 32;
/// Room for one datagram. A DNS answer over UDP without EDNS is at most 512
/// bytes; a larger (non-conforming) one is cut here and reported as such.
pub const SLOT: usize = 4096;

/// Set once the kernel said it has no `recvmmsg`/`sendmmsg`: single calls from then on.
static NO_MMSG: AtomicBool = AtomicBool::new(false);

/// Receive buffers for one socket: [`BATCH`] slots of [`SLOT`] bytes.
pub struct RecvBatch {
    bufs: Box<[[u8; SLOT]]>,
    lens: [usize; BATCH],
    cut: [bool; BATCH],
    n: usize,
}

impl Default for RecvBatch {
    fn default() -> Self {
        RecvBatch {
            bufs: vec![[0u8; SLOT]; BATCH].into_boxed_slice(),
            lens: [0; BATCH],
            cut: [false; BATCH],
            n: 0,
        }
    }
}

impl RecvBatch {
    /// Reads the datagrams waiting on `sock` (at least one, at most
    /// [`BATCH`]); `WouldBlock` when there is none.
    pub fn recv(&mut self, sock: &impl AsRawFd) -> io::Result<usize> {
        self.n = 0;
        #[cfg(target_os = "linux")]
        if !NO_MMSG.load(Ordering::Relaxed) {
            match self.recv_mmsg(sock.as_raw_fd()) {
                Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                    NO_MMSG.store(true, Ordering::Relaxed)
                }
                r => return r,
            }
        }
        self.recv_one(sock.as_raw_fd())
    }

    #[cfg(target_os = "linux")]
    fn recv_mmsg(&mut self, fd: i32) -> io::Result<usize> {
        // SAFETY: every iovec points into a distinct slot of `self.bufs`, which
        // outlives the call; the kernel writes at most `iov_len` bytes to each
        // and fills `msg_len`/`msg_flags` of at most `BATCH` headers.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, buf) in self.bufs.iter_mut().enumerate() {
            iov[i].iov_base = buf.as_mut_ptr().cast();
            iov[i].iov_len = SLOT;
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let got = unsafe {
            libc::recvmmsg(
                fd,
                hdrs.as_mut_ptr(),
                BATCH as _,
                libc::MSG_DONTWAIT as _,
                std::ptr::null_mut(),
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = (got as usize).min(BATCH);
        for (i, h) in hdrs.iter().take(n).enumerate() {
            self.lens[i] = (h.msg_len as usize).min(SLOT);
            self.cut[i] = h.msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
        }
        self.n = n;
        Ok(n)
    }

    fn recv_one(&mut self, fd: i32) -> io::Result<usize> {
        let buf = &mut self.bufs[0];
        // SAFETY: `buf` is a live, writable slot of `SLOT` bytes.
        let got = unsafe {
            libc::recv(
                fd,
                buf.as_mut_ptr().cast(),
                SLOT,
                libc::MSG_DONTWAIT | libc::MSG_TRUNC,
            )
        };
        if got < 0 {
            return Err(io::Error::last_os_error());
        }
        // with MSG_TRUNC the real length comes back, even if longer than the slot
        self.lens[0] = (got as usize).min(SLOT);
        self.cut[0] = got as usize > SLOT;
        self.n = 1;
        Ok(1)
    }

    /// The datagrams of the last [`RecvBatch::recv`]: each with whether it was
    /// longer than its slot (then only its head is here).
    pub fn datagrams(&self) -> impl Iterator<Item = (&[u8], bool)> {
        (0..self.n).map(|i| (&self.bufs[i][..self.lens[i]], self.cut[i]))
    }
}

/// Sends `msgs` in order on connected `sock`, as many as one call takes:
/// how many went; `WouldBlock` if none could.
pub fn send_batch<B: AsRef<[u8]>>(sock: &impl AsRawFd, msgs: &[B]) -> io::Result<usize> {
    let fd = sock.as_raw_fd();
    let Some(first) = msgs.first() else {
        return Ok(0);
    };
    #[cfg(target_os = "linux")]
    if msgs.len() > 1 && !NO_MMSG.load(Ordering::Relaxed) {
        let n = msgs.len().min(BATCH);
        // SAFETY: the iovecs point at the caller's buffers, which the kernel
        // only reads during the call; `n` headers are initialised.
        let mut iov: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        let mut hdrs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for (i, m) in msgs.iter().take(n).enumerate() {
            let m = m.as_ref();
            iov[i].iov_base = m.as_ptr() as *mut _;
            iov[i].iov_len = m.len();
            hdrs[i].msg_hdr.msg_iov = &mut iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        let sent =
            unsafe { libc::sendmmsg(fd, hdrs.as_mut_ptr(), n as _, libc::MSG_DONTWAIT as _) };
        if sent >= 0 {
            return Ok(sent as usize);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENOSYS) {
            return Err(e);
        }
        NO_MMSG.store(true, Ordering::Relaxed);
    }
    let m = first.as_ref();
    // SAFETY: `m` is a live buffer the kernel only reads.
    let sent = unsafe { libc::send(fd, m.as_ptr().cast(), m.len(), libc::MSG_DONTWAIT) };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(1)
}

/// Asks for a receive buffer of `bytes` on `sock` (the kernel caps it at
/// `net.core.rmem_max`); best effort, a refusal leaves the default.
pub fn set_recv_buffer(sock: &impl AsRawFd, bytes: usize) {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `v` is a live c_int whose size is passed along; the kernel only reads it.
    let _ = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    #[test]
    fn batches_go_and_come_back_whole_and_in_order() {
        let a = UdpSocket::bind("127.0.0.1:0").unwrap();
        let b = UdpSocket::bind("127.0.0.1:0").unwrap();
        a.connect(b.local_addr().unwrap()).unwrap();
        b.connect(a.local_addr().unwrap()).unwrap();
        let mut rb = RecvBatch::default();
        assert_eq!(
            rb.recv(&b).unwrap_err().kind(),
            io::ErrorKind::WouldBlock,
            "nothing waiting"
        );
        let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; 1 + i as usize]).collect();
        let mut sent = 0;
        while sent < msgs.len() {
            sent += send_batch(&a, &msgs[sent..]).unwrap();
        }
        let big = vec![7u8; SLOT + 10];
        a.send(&big).unwrap();
        let mut got: Vec<(Vec<u8>, bool)> = Vec::new();
        while got.len() < 41 {
            rb.recv(&b).unwrap();
            got.extend(rb.datagrams().map(|(d, cut)| (d.to_vec(), cut)));
        }
        for (i, (d, cut)) in got.iter().take(40).enumerate() {
            assert_eq!(d, &msgs[i]);
            assert!(!cut);
        }
        assert_eq!(got[40].0.len(), SLOT);
        assert!(got[40].1, "a datagram longer than its slot is reported cut");
    }
}
