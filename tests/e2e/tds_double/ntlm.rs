//! The server's side of NTLM ([MS-NLMP]), as far as the double needs it to check a Windows login.
//!
//! A client logging in with Windows authentication puts an NTLM NEGOTIATE message in its LOGIN7
//! (the SSPI field); the server answers with a CHALLENGE message (8 random bytes, and its names
//! as "target info"); the client proves it knows the account's password with an AUTHENTICATE
//! message holding an NTLMv2 response, computed from the challenge and the password without the
//! password ever crossing the network. The double checks that proof the way a domain controller
//! does (§3.3.2):
//!
//! ```text
//! NTOWFv2    = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPERCASE(user) + domain))
//! NTProofStr = HMAC-MD5(NTOWFv2, server_challenge + blob)
//! ```
//!
//! where the blob is the rest of the client's NTLMv2 response (a timestamp, the client's own
//! random challenge and the target info). The proof is checked with the user and domain the
//! client sent, against the password the double was given for that account.
//!
//! Not checked: the MIC and the session key (they protect the messages against tampering in
//! transit and set up signing, which SQL Server does not use for TDS; neither involves the
//! password beyond the proof), and the blob's timestamp (a real server refuses one far from its
//! clock, against replays).

use hmac::{Hmac, KeyInit, Mac};
use md4::{Digest, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";

/// NEGOTIATE flags (§2.2.2.5) the double agrees to, when the client asks for them.
const UNICODE: u32 = 1 << 0;
const REQUEST_TARGET: u32 = 1 << 2;
const SIGN: u32 = 1 << 4;
const SEAL: u32 = 1 << 5;
const NTLM: u32 = 1 << 9;
const ALWAYS_SIGN: u32 = 1 << 15;
const TARGET_TYPE_DOMAIN: u32 = 1 << 16;
const EXTENDED_SESSIONSECURITY: u32 = 1 << 19;
const TARGET_INFO: u32 = 1 << 23;
const NEGOTIATE_128: u32 = 1 << 29;
const KEY_EXCH: u32 = 1 << 30;
const NEGOTIATE_56: u32 = 1 << 31;
const AGREED: u32 = UNICODE
    | REQUEST_TARGET
    | SIGN
    | SEAL
    | NTLM
    | ALWAYS_SIGN
    | EXTENDED_SESSIONSECURITY
    | NEGOTIATE_128
    | KEY_EXCH
    | NEGOTIATE_56;

/// AV pair ids of the target info (§2.2.2.1).
const AV_EOL: u16 = 0;
const AV_NB_COMPUTER_NAME: u16 = 1;
const AV_NB_DOMAIN_NAME: u16 = 2;
const AV_DNS_COMPUTER_NAME: u16 = 3;
const AV_DNS_DOMAIN_NAME: u16 = 4;
const AV_TIMESTAMP: u16 = 7;

/// The double's own names, as a domain-joined SQL Server announces them in its challenge.
pub const SERVER_DOMAIN: &str = "CLINIC";
const SERVER_COMPUTER: &str = "SQL01";
const SERVER_DNS_DOMAIN: &str = "clinic.example";
const SERVER_DNS_COMPUTER: &str = "sql01.clinic.example";

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn from_utf16(bytes: &[u8]) -> Result<String, String> {
    if !bytes.len().is_multiple_of(2) {
        return Err("a UTF-16 field of odd length".into());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| "invalid UTF-16".into())
}

fn u32_at(msg: &[u8], at: usize) -> Result<u32, String> {
    msg.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| format!("NTLM message ends before byte {}", at + 4))
}

/// A length/max-length/offset field (§2.2.1): the bytes it points at.
fn field(msg: &[u8], at: usize) -> Result<&[u8], String> {
    let head = msg
        .get(at..at + 8)
        .ok_or_else(|| format!("NTLM message ends before its field at {at}"))?;
    let len = usize::from(u16::from_le_bytes([head[0], head[1]]));
    let offset = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
    msg.get(offset..offset + len)
        .ok_or_else(|| format!("NTLM field at {at} points past the message"))
}

fn check_header(msg: &[u8], message_type: u32) -> Result<(), String> {
    if msg.get(..8) != Some(&SIGNATURE[..]) {
        return Err("not an NTLM message (no NTLMSSP signature)".into());
    }
    let found = u32_at(msg, 8)?;
    if found != message_type {
        return Err(format!(
            "NTLM message type {found} where {message_type} was expected"
        ));
    }
    Ok(())
}

/// The flags of a NEGOTIATE message (§2.2.1.1).
pub fn negotiate_flags(msg: &[u8]) -> Result<u32, String> {
    check_header(msg, 1)?;
    u32_at(msg, 12)
}

/// A CHALLENGE message (§2.2.1.2) answering a NEGOTIATE with `client_flags`: the server's random
/// `challenge`, its names, and `timestamp` (FILETIME: 100 ns since 1601).
pub fn challenge(client_flags: u32, challenge: [u8; 8], timestamp: u64) -> Vec<u8> {
    let flags = (client_flags & AGREED) | TARGET_TYPE_DOMAIN | TARGET_INFO | UNICODE;
    let target_name = utf16(SERVER_DOMAIN);
    let mut info = Vec::new();
    for (id, value) in [
        (AV_NB_DOMAIN_NAME, SERVER_DOMAIN),
        (AV_NB_COMPUTER_NAME, SERVER_COMPUTER),
        (AV_DNS_DOMAIN_NAME, SERVER_DNS_DOMAIN),
        (AV_DNS_COMPUTER_NAME, SERVER_DNS_COMPUTER),
    ] {
        let value = utf16(value);
        info.extend_from_slice(&id.to_le_bytes());
        info.extend_from_slice(&(value.len() as u16).to_le_bytes());
        info.extend_from_slice(&value);
    }
    info.extend_from_slice(&AV_TIMESTAMP.to_le_bytes());
    info.extend_from_slice(&8u16.to_le_bytes());
    info.extend_from_slice(&timestamp.to_le_bytes());
    info.extend_from_slice(&AV_EOL.to_le_bytes());
    info.extend_from_slice(&0u16.to_le_bytes());

    // Fixed part: signature, type, target name field, flags, challenge, reserved, target info
    // field (no version: the flag for it is not agreed).
    const FIXED: usize = 48;
    let mut msg = Vec::with_capacity(FIXED + target_name.len() + info.len());
    msg.extend_from_slice(SIGNATURE);
    msg.extend_from_slice(&2u32.to_le_bytes());
    let name_len = target_name.len() as u16;
    msg.extend_from_slice(&name_len.to_le_bytes());
    msg.extend_from_slice(&name_len.to_le_bytes());
    msg.extend_from_slice(&(FIXED as u32).to_le_bytes());
    msg.extend_from_slice(&flags.to_le_bytes());
    msg.extend_from_slice(&challenge);
    msg.extend_from_slice(&[0; 8]);
    let info_len = info.len() as u16;
    msg.extend_from_slice(&info_len.to_le_bytes());
    msg.extend_from_slice(&info_len.to_le_bytes());
    msg.extend_from_slice(&((FIXED + target_name.len()) as u32).to_le_bytes());
    msg.extend_from_slice(&target_name);
    msg.extend_from_slice(&info);
    msg
}

/// What an AUTHENTICATE message (§2.2.1.3) says.
#[derive(Debug, Clone)]
pub struct Authenticate {
    pub domain: String,
    pub user: String,
    /// The NTLMv2 response: NTProofStr (16 bytes), then the blob.
    pub nt_response: Vec<u8>,
}

pub fn authenticate(msg: &[u8]) -> Result<Authenticate, String> {
    check_header(msg, 3)?;
    let flags = u32_at(msg, 60)?;
    if flags & UNICODE == 0 {
        return Err("the double only serves Unicode NTLM (the UNICODE flag is not set)".into());
    }
    Ok(Authenticate {
        nt_response: field(msg, 20)?.to_vec(),
        domain: from_utf16(field(msg, 28)?)?,
        user: from_utf16(field(msg, 36)?)?,
    })
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Hmac<Md5> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    let mut out = [0u8; 16];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// NTOWFv2 (§3.3.2): the key an NTLMv2 response is computed with.
pub fn ntowfv2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash = Md4::digest(utf16(password));
    hmac_md5(&nt_hash, &[&utf16(&(user.to_uppercase() + domain))])
}

/// NTProofStr (§3.3.2): what the response must begin with.
pub fn nt_proof(ntowfv2: &[u8; 16], server_challenge: &[u8; 8], blob: &[u8]) -> [u8; 16] {
    hmac_md5(ntowfv2, &[server_challenge, blob])
}

/// Whether `auth` proves knowledge of `password` for the account it names, against the
/// challenge the double sent. An NTLMv1 response (24 bytes) never does: SQL Server's own
/// domain policy ("send NTLMv2 response only") refuses it, and so does the double.
pub fn verify(auth: &Authenticate, password: &str, server_challenge: &[u8; 8]) -> bool {
    if auth.nt_response.len() <= 16 + 28 {
        return false;
    }
    let (proof, blob) = auth.nt_response.split_at(16);
    // The blob's first two bytes are its version (RespType, HiRespType), both 1 (§2.2.2.7).
    if blob[..2] != [1, 1] {
        return false;
    }
    let key = ntowfv2(password, &auth.user, &auth.domain);
    let expected = nt_proof(&key, server_challenge, blob);
    // Constant time is not needed in a test double; equality is.
    proof == expected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    /// [MS-NLMP] 4.2.4: user "User", domain "Domain", password "Password", server challenge
    /// 0123456789abcdef, client challenge aa…, time 0, target info naming "Domain" and "Server".
    const SERVER_CHALLENGE: [u8; 8] = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    const BLOB: &str = concat!(
        "0101000000000000",                 // versions, reserved
        "0000000000000000",                 // time
        "aaaaaaaaaaaaaaaa",                 // client challenge
        "00000000",                         // reserved
        "02000c0044006f006d00610069006e00", // MsvAvNbDomainName "Domain"
        "01000c00530065007200760065007200", // MsvAvNbComputerName "Server"
        "00000000",                         // MsvAvEOL
        "00000000",                         // reserved
    );

    #[test]
    fn ntowfv2_and_the_proof_match_the_published_ms_nlmp_vectors() {
        assert_eq!(
            hex(&Md4::digest(utf16("Password"))),
            "a4f49c406510bdcab6824ee7c30fd852"
        );
        let key = ntowfv2("Password", "User", "Domain");
        assert_eq!(hex(&key), "0c868a403bfd7a93a3001ef22ef02e3f");
        let proof = nt_proof(&key, &SERVER_CHALLENGE, &unhex(BLOB));
        assert_eq!(hex(&proof), "68cd0ab851e51c96aabc927bebef6a1c");
    }

    #[test]
    fn verify_accepts_the_published_response_and_refuses_any_change() {
        let mut nt_response = unhex("68cd0ab851e51c96aabc927bebef6a1c");
        nt_response.extend(unhex(BLOB));
        let auth = Authenticate {
            domain: "Domain".into(),
            user: "User".into(),
            nt_response,
        };
        assert!(verify(&auth, "Password", &SERVER_CHALLENGE));
        // The user name is case-insensitive (upper-cased), the domain and password are not.
        let upper = Authenticate {
            user: "USER".into(),
            ..auth.clone()
        };
        assert!(verify(&upper, "Password", &SERVER_CHALLENGE));
        assert!(!verify(&auth, "password", &SERVER_CHALLENGE));
        let other_domain = Authenticate {
            domain: "DOMAIN".into(),
            ..auth.clone()
        };
        assert!(!verify(&other_domain, "Password", &SERVER_CHALLENGE));
        let mut other_challenge = SERVER_CHALLENGE;
        other_challenge[7] ^= 1;
        assert!(!verify(&auth, "Password", &other_challenge));
        for i in 0..auth.nt_response.len() {
            let mut tampered = auth.clone();
            tampered.nt_response[i] ^= 0x01;
            assert!(
                !verify(&tampered, "Password", &SERVER_CHALLENGE),
                "byte {i} changed"
            );
        }
        let short = Authenticate {
            nt_response: vec![0; 24],
            ..auth
        };
        assert!(!verify(&short, "Password", &SERVER_CHALLENGE));
    }

    #[test]
    fn the_challenge_carries_the_names_and_only_agreed_flags() {
        let msg = challenge(0xE208_8297, [7; 8], 42);
        check_header(&msg, 2).expect("a CHALLENGE");
        assert_eq!(
            from_utf16(field(&msg, 12).expect("name")).expect("utf16"),
            "CLINIC"
        );
        let flags = u32_at(&msg, 20).expect("flags");
        assert_eq!(flags & !(AGREED | TARGET_TYPE_DOMAIN | TARGET_INFO), 0);
        assert_ne!(flags & TARGET_INFO, 0);
        assert_eq!(&msg[24..32], &[7; 8]);
        let info = field(&msg, 40).expect("target info");
        assert!(info.ends_with(&[0, 0, 0, 0]), "ends with MsvAvEOL");
    }
}
