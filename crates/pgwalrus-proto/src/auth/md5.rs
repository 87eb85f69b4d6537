//! The MD5 password response: `"md5" || hex(md5(hex(md5(password || user)) || salt))`.

use md5::{Digest, Md5};

/// Computes the response to `AuthenticationMD5Password` for `user` and `password`.
///
/// ```
/// // The exchange captured between psql 15 and PostgreSQL 15.18 (role md5user, password
/// // "pencil", salt a3 99 ee 99).
/// let r = pgwalrus_proto::auth::md5_response("md5user", b"pencil", [0xa3, 0x99, 0xee, 0x99]);
/// assert_eq!(r, "md51710aba3c9294185499c50ae1e95fa95");
/// ```
pub fn md5_response(user: &str, password: &[u8], salt: [u8; 4]) -> String {
    let mut inner = Md5::new();
    inner.update(password);
    inner.update(user.as_bytes());
    let inner_hex = hex(&inner.finalize());
    let mut outer = Md5::new();
    outer.update(inner_hex.as_bytes());
    outer.update(salt);
    format!("md5{}", hex(&outer.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::{self, Dir};

    #[test]
    fn matches_captured_libpq_response() {
        let frames = testdata::frames(testdata::MD5);
        assert_eq!(frames[1].0, Dir::Server);
        let salt: [u8; 4] = frames[1].1[9..13].try_into().unwrap();
        let sent = &frames[2].1;
        assert_eq!(
            sent[5..sent.len() - 1],
            *md5_response("md5user", b"pencil", salt).as_bytes()
        );
    }
}
