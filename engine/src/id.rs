//! Unguessable identifiers for jobs and sessions.
//!
//! Both carry 128 bits from the operating system's CSPRNG, written as 22
//! characters of unpadded URL-safe base64, so they can appear in paths and
//! cookies without escaping. Parsing is strict: anything that is not exactly
//! such a string is rejected, so a bad id never reaches a map lookup as
//! something else.

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Length of the text form of an id: 16 bytes in base64 without padding.
pub const ID_TEXT_LEN: usize = 22;

/// Why a string is not an id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a valid id: expected {ID_TEXT_LEN} characters of URL-safe base64")]
pub struct InvalidId;

fn random_128() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // The OS random source failing is not something a server can work
    // around: without it no id would be unguessable.
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}

fn parse_128(s: &str) -> Result<[u8; 16], InvalidId> {
    if s.len() != ID_TEXT_LEN {
        return Err(InvalidId);
    }
    let mut out = [0u8; 16];
    let n = URL_SAFE_NO_PAD
        .decode_slice(s.as_bytes(), &mut out)
        .map_err(|_| InvalidId)?;
    // 22 characters carry 132 bits; the decoder rejects non-zero trailing
    // bits, so each id has exactly one text form.
    if n != 16 {
        return Err(InvalidId);
    }
    Ok(out)
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// A fresh random id.
            pub fn random() -> Self {
                Self(random_128())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; ID_TEXT_LEN];
                // 16 bytes always encode to exactly 22 characters.
                let n = URL_SAFE_NO_PAD
                    .encode_slice(self.0, &mut buf)
                    .expect("16 bytes fit in 22 base64 characters");
                // base64 output is ASCII.
                f.write_str(std::str::from_utf8(&buf[..n]).expect("base64 is ASCII"))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({self})", stringify!($name))
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                parse_128(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies one job. Knowing it is not enough to read the job: the
    /// job also has to belong to the caller's session.
    JobId
);
id_type!(
    /// Identifies a visitor's session; it lives in an HttpOnly cookie.
    SessionId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_form_round_trips_and_is_url_safe() {
        for _ in 0..100 {
            let id = JobId::random();
            let text = id.to_string();
            assert_eq!(text.len(), ID_TEXT_LEN);
            assert!(text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
            assert_eq!(text.parse::<JobId>(), Ok(id));
        }
    }

    #[test]
    fn ids_differ() {
        let a = SessionId::random();
        let b = SessionId::random();
        assert_ne!(a, b);
    }

    #[test]
    fn rejects_anything_else() {
        let good = JobId::random().to_string();
        for bad in [
            "",
            "1",
            "42",
            &good[..21],
            &format!("{good}A"),
            "AAAAAAAAAAAAAAAAAAAAA+",
            "AAAAAAAAAAAAAAAAAAAAA/",
            "AAAAAAAAAAAAAAAAAAAA==",
            "AAAAAAAAAAAAAAAAAAAAA\0",
            "ééééééééééé",
        ] {
            assert_eq!(bad.parse::<JobId>(), Err(InvalidId), "{bad:?}");
        }
        // Non-canonical trailing bits: 'B' sets a bit past the 128th.
        assert_eq!("AAAAAAAAAAAAAAAAAAAAAB".parse::<JobId>(), Err(InvalidId));
    }
}
