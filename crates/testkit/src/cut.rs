//! [`CutProxy`]: a TCP relay on loopback in front of a real LDAP server
//! that cuts every connection after the server has answered a given number
//! of write operations (adds, modifies, deletes, modify DNs), once armed:
//! a connection lost halfway through an export, at a point a test chooses,
//! with the server's own answers up to it.
//!
//! The relay reads the server's LDAP messages whole (BER: a SEQUENCE with
//! its length), so the cut falls between two answers, never inside one.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::thread;

/// The relay; it stops accepting when dropped (connections in progress
/// end with their peers).
pub struct CutProxy {
    addr: SocketAddr,
    /// Write answers still let through; negative: no limit.
    left: Arc<AtomicI64>,
}

impl CutProxy {
    /// A relay to `target` (`127.0.0.1:port`), not armed.
    pub fn start(target: SocketAddr) -> std::io::Result<CutProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let left = Arc::new(AtomicI64::new(-1));
        let shared = Arc::clone(&left);
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { break };
                let left = Arc::clone(&shared);
                thread::spawn(move || {
                    let _ = relay(client, target, &left);
                });
            }
        });
        Ok(CutProxy { addr, left })
    }

    /// `ldap://127.0.0.1:<port>` of the relay.
    pub fn url(&self) -> String {
        format!("ldap://{}", self.addr)
    }

    /// Let `n` more write answers through, then cut every connection.
    pub fn cut_after(&self, n: u32) {
        self.left.store(i64::from(n), Ordering::SeqCst);
    }

    /// No cut any more (connections made from now on last).
    pub fn uncut(&self) {
        self.left.store(-1, Ordering::SeqCst);
    }
}

/// Client to server as it comes; server to client message by message,
/// counting write answers.
fn relay(client: TcpStream, target: SocketAddr, left: &AtomicI64) -> std::io::Result<()> {
    let server = TcpStream::connect(target)?;
    let (mut c_in, mut s_out) = (client.try_clone()?, server.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut c_in, &mut s_out);
        let _ = s_out.shutdown(Shutdown::Write);
    });
    let (mut s_in, mut c_out) = (server, client);
    while let Some(message) = read_message(&mut s_in)? {
        if is_write_answer(&message) {
            let n = left.load(Ordering::SeqCst);
            if n == 0 {
                break;
            }
            if n > 0 {
                left.fetch_sub(1, Ordering::SeqCst);
            }
        }
        c_out.write_all(&message)?;
    }
    let _ = c_out.shutdown(Shutdown::Both);
    let _ = s_in.shutdown(Shutdown::Both);
    Ok(())
}

/// One BER element (tag, length, contents), or `None` at the end.
fn read_message(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = [0u8; 2];
    match r.read_exact(&mut head) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut message = head.to_vec();
    let len = if head[1] & 0x80 == 0 {
        usize::from(head[1])
    } else {
        let n = usize::from(head[1] & 0x7f);
        let mut bytes = vec![0u8; n];
        r.read_exact(&mut bytes)?;
        message.extend_from_slice(&bytes);
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let start = message.len();
    message.resize(start + len, 0);
    r.read_exact(&mut message[start..])?;
    Ok(Some(message))
}

/// Whether an LDAPMessage answers a write: its protocol op (after the
/// message id) is a modify (7), add (9), delete (11) or modify DN (13)
/// response.
fn is_write_answer(message: &[u8]) -> bool {
    // SEQUENCE header, then the INTEGER message id.
    let skip_len = |at: usize| -> Option<usize> {
        let b = *message.get(at)?;
        if b & 0x80 == 0 {
            Some(at + 1 + usize::from(b))
        } else {
            let n = usize::from(b & 0x7f);
            let len = message
                .get(at + 1..at + 1 + n)?
                .iter()
                .fold(0usize, |acc, x| (acc << 8) | usize::from(*x));
            Some(at + 1 + n + len)
        }
    };
    let seq_body = match message.get(1) {
        Some(b) if b & 0x80 == 0 => 2,
        Some(b) => 2 + usize::from(b & 0x7f),
        None => return false,
    };
    if message.get(seq_body) != Some(&0x02) {
        return false;
    }
    let Some(op_at) = skip_len(seq_body + 1) else {
        return false;
    };
    matches!(message.get(op_at), Some(0x67 | 0x69 | 0x6b | 0x6d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_add_response_should_be_a_write_answer_and_a_search_entry_not() {
        // messageID 2, AddResponse { success, "", "" }.
        let add = [
            0x30, 0x0c, 0x02, 0x01, 0x02, 0x69, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert!(is_write_answer(&add));
        let mut r = &add[..];
        assert_eq!(read_message(&mut r).unwrap().unwrap(), add.to_vec());
        // SearchResultDone (5).
        let done = [
            0x30, 0x0c, 0x02, 0x01, 0x02, 0x65, 0x07, 0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00,
        ];
        assert!(!is_write_answer(&done));
    }
}
